// Package approvals is tapbot's domain: a request for a Temporary Access Pass, who may ask for and
// approve one, its states from pending to revealed, where it is stored, and the one-time reveal.
// It knows nothing of Slack or Microsoft Graph; the bot and graph packages adapt those to it.
package approvals

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// State is where a request is in its life. A request ends exactly once: Denied, Expired,
// Cancelled, Failed, or Issued (later Revealed).
type State string

// The states of a request.
const (
	Pending State = "pending" // waiting for an approver
	Issuing State = "issuing" // approved; the pass is being created in Entra
	Issued  State = "issued"  // the pass exists and waits for its one reveal
	// Revealing means one click has claimed the pass and is putting it on the recipient's
	// screen; it ends Revealed when that worked, or back at Issued with the pass returned.
	Revealing State = "revealing"
	Revealed  State = "revealed" // the recipient has seen the pass
	Denied    State = "denied"
	Expired   State = "expired" // nobody decided within the request TTL
	Failed    State = "failed"  // approved, but the pass could not be created or kept
	// Cancelled means the request never reached a decision: the approvers could not be asked.
	Cancelled State = "cancelled"
	// Revoked means an approver or the requester deleted the pass in Entra ID after it was issued.
	Revoked State = "revoked"
)

// Final reports whether nothing more can happen to a request in this state.
func (s State) Final() bool {
	switch s {
	case Denied, Expired, Cancelled, Failed, Revealed, Revoked:
		return true
	}
	return false
}

// Approved reports whether an approver said yes, whatever happened after.
func (s State) Approved() bool {
	return s == Issuing || s == Issued || s == Revealing || s == Revealed || s == Failed || s == Revoked
}

// Target is the person the pass is for.
type Target struct {
	SlackID     string `json:"slack_id,omitempty"` // empty when the person has no Slack account
	EntraID     string `json:"entra_id,omitempty"`
	UPN         string `json:"upn,omitempty"`
	Email       string `json:"email,omitempty"` // the address the requester gave or Slack showed
	Mail        string `json:"mail,omitempty"`  // the directory's mail attribute
	DisplayName string `json:"display_name,omitempty"`
	// Disabled is set when the account was disabled in Entra ID when the request was made (a
	// new hire's, until HR enables it on day one); only a pass that starts later is allowed then.
	Disabled bool `json:"disabled,omitempty"`
}

// Matches reports whether an email address is one of the target's (UPN, mail, or the address
// given), so a person cannot pass for someone else by the address they use.
func (t Target) Matches(email string) bool {
	for _, a := range []string{t.UPN, t.Mail, t.Email} {
		if a != "" && strings.EqualFold(a, email) {
			return true
		}
	}
	return false
}

// MessageRef points at a chat message that tapbot keeps up to date.
type MessageRef struct {
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
}

// IsZero reports whether the message was never posted. A click's App Home (FromHome) is no
// posted message either.
func (m MessageRef) IsZero() bool { return m.Channel == "" || m.TS == "" || m.Channel == homeChannel }

// Request is one ask for a Temporary Access Pass and everything decided about it. It never holds
// the pass itself.
type Request struct {
	ID         string        `json:"id,omitempty"`
	Requester  string        `json:"requester,omitempty"` // chat user ID
	Target     Target        `json:"target,omitzero"`
	Recipient  string        `json:"recipient,omitempty"` // chat user ID who may reveal the pass: the target, or the requester when the target has no chat account
	Lifetime   time.Duration `json:"lifetime,omitempty"`
	UsableOnce bool          `json:"usable_once,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	State      State         `json:"state,omitempty"`
	CreatedAt  time.Time     `json:"created_at,omitzero"`
	ExpiresAt  time.Time     `json:"expires_at,omitzero"` // a pending request can no longer be approved after this
	// RequesterEntraID is the requester's directory object ID, resolved from their chat email at
	// Submit, so every decision can tell whether the approver is the same person under another
	// chat account. Empty only in records from before it was kept.
	RequesterEntraID string `json:"requester_entra_id,omitempty"`
	// ReplacesActivePass is true when the target already had a pass when the request was made;
	// creating a new one replaces it.
	ReplacesActivePass bool `json:"replaces_active_pass,omitempty"`
	// StartsAt is when the requester wants the pass to start working (a new hire's first
	// morning); zero means as soon as it is approved.
	StartsAt time.Time `json:"starts_at,omitzero"`

	DecidedBy     string    `json:"decided_by,omitempty"` // approver's chat user ID
	DecidedAt     time.Time `json:"decided_at,omitzero"`
	PassExpiresAt time.Time `json:"pass_expires_at,omitzero"`
	RevealedAt    time.Time `json:"revealed_at,omitzero"`
	Failure       string    `json:"failure,omitempty"` // plain sentence saying why the request failed

	// PassStartsAt is when the issued pass starts working, as Entra ID recorded it; the pass
	// expires at PassStartsAt plus its lifetime.
	PassStartsAt time.Time `json:"pass_starts_at,omitzero"`
	// UnopenedAt is when a replica first could not unseal the pass (its TAP_ENCRYPTION_KEY lacks
	// the key it was sealed with), so a pass that expires that way is reported for what it is.
	UnopenedAt time.Time `json:"unopened_at,omitzero"`

	ApprovalMessage MessageRef `json:"approval_message,omitzero"`
	RevealMessage   MessageRef `json:"reveal_message,omitzero"`

	// PassID is the pass's method ID in the directory, recorded as soon as it exists so an
	// interrupted approval can find and delete it.
	// RemovedInEntraBy names who deleted the pass in Entra ID outside tapbot, as the audit log
	// shows them; set with Revoked by the tenant watcher.
	RemovedInEntraBy string `json:"removed_in_entra_by,omitempty"`
	PassID           string `json:"pass_id,omitempty"`
	// Owner is the replica in the middle of a multi-step change (issuing, delivering, revealing),
	// and LeaseUntil the latest it may take; when the owner stops, the sweeper takes over.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// RevealToken names the reveal attempt that claims the sealed pass (Store.TakeSecret), so a
	// take sent again after its reply was lost finds its own claim. It stays after an attempt
	// whose take had no clear outcome, for the next click to pick that claim up, and is cleared
	// once the pass is shown or back in the store, and when a sweeper ends a reveal it took over
	// from a stalled replica, so no later click picks up a claim that replica may have shown. It
	// grants nothing by itself.
	RevealToken string `json:"reveal_token,omitempty"`
	// Resubmitted names the request that replaced this one after an interruption. Each sweeper
	// that takes the interrupted request over picks a name of its own, so two sweepers (one only
	// slow) never both believe they made the copy and hold its lock.
	Resubmitted string `json:"resubmitted,omitempty"`
	// Superseded lists the names earlier takeovers picked: one of them may hold the target lock
	// (handed on to the copy) or exist as a copy nobody was shown (cancelled).
	Superseded []string `json:"superseded,omitempty"`
	// NotCreated is true from approval until the call that creates the pass begins: an
	// interruption before then left no pass to look for. (Records from before this field existed
	// lack it and are cleaned up by listing the target's passes.)
	NotCreated bool `json:"not_created,omitempty"`
	// CleanupFailures counts the sweeps that could not clean up after an interruption because
	// Entra ID kept failing, and CleanupSince is when the first of them failed; see
	// cleanupGiveUp.
	CleanupFailures int       `json:"cleanup_failures,omitempty"`
	CleanupSince    time.Time `json:"cleanup_since,omitzero"`

	// Privileged is set when the target holds directory roles or protected groups; only the
	// protected approvers may approve such a request.
	Privileged Privileges `json:"privileged,omitzero"`
	// Manager is the target's manager in chat, asked to approve in a DM instead of the channel.
	Manager string `json:"manager,omitempty"`

	// CancelledBy is the requester who withdrew a pending request; empty when tapbot cancelled it.
	CancelledBy string `json:"cancelled_by,omitempty"`

	RevokedBy  string    `json:"revoked_by,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	ReportedAt time.Time `json:"reported_at,omitzero"` // when the recipient said "this wasn't me"

	// RemindedAt is when tapbot bumped the pending request to its approvers (once, after
	// TAP_REMIND_AFTER); RequesterRemindedAt is when the requester did (once).
	RemindedAt          time.Time `json:"reminded_at,omitzero"`
	RequesterRemindedAt time.Time `json:"requester_reminded_at,omitzero"`
	// Baseline lists the IDs of the target's strong sign-in methods that existed before the
	// pass, taken while it waited for its reveal, so a method registered with the pass is told
	// apart even when Entra ID gives it no creation time. BaselineAt is when it was taken.
	Baseline   []string  `json:"baseline,omitempty"`
	BaselineAt time.Time `json:"baseline_at,omitzero"`
	// Registered says which strong sign-in method the person registered after the reveal, and
	// RegisteredAt when tapbot saw it; the pass has then done its job.
	Registered   string    `json:"registered,omitempty"`
	RegisteredAt time.Time `json:"registered_at,omitzero"`
	// Onboarding is the new hire's onboarding record when the request came from its prompt;
	// MissedAt is when tapbot saw that such a pass was revealed and ended with no strong sign-in
	// method registered, and told the requester (once).
	Onboarding string    `json:"onboarding,omitempty"`
	MissedAt   time.Time `json:"missed_at,omitzero"`
}

// RecipientIsRequester reports whether the pass goes to the requester because the target has no
// chat account.
func (r *Request) RecipientIsRequester() bool { return r.Target.SlackID == "" }

// Clone returns a deep copy, so callers can change a request without touching a store's copy.
func (r *Request) Clone() *Request {
	c := *r
	c.Baseline = append([]string(nil), r.Baseline...)
	c.Superseded = append([]string(nil), r.Superseded...)
	return &c
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random request ID, safe to put in a button value: it grants nothing by itself,
// since every click is checked against the stored request.
func NewID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "tap_" + strings.ToLower(idEncoding.EncodeToString(b))
}

// ValidID reports whether s has the shape of an ID from NewID, so forged values are refused
// before they reach a store.
func ValidID(s string) bool {
	if len(s) != 20 || !strings.HasPrefix(s, "tap_") {
		return false
	}
	for _, c := range s[4:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
