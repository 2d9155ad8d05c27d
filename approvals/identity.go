package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// One person can hold several chat accounts, each with another address of their one directory
// account (its UPN, its mail, an alias among its proxy addresses). Four eyes means two people,
// so the rules compare directory object IDs, resolved at every request and approval (an account
// found for an email is reused for GroupCacheTTL), and keep the chat ID comparisons as the cheap
// first check.

// personRole says whose identity is being resolved, so a refusal can say so to the right person.
type personRole int

const (
	asRequester     personRole = iota // the person asking, at Submit
	asApprover                        // the person deciding, at Approve
	asPastRequester                   // the requester of a stored request, resolved for its approver
)

// sameObject reports whether two directory object IDs name one account. Entra ID object IDs are
// GUIDs, which Graph may spell in either case.
func sameObject(a, b string) bool { return a != "" && strings.EqualFold(a, b) }

// directoryPerson returns the directory object ID of the person behind a chat user: their chat
// profile's email, found in the directory the way a target is (UPN, mail or proxy address). A
// user tapbot cannot resolve gets a Forbidden saying why and what to fix; a directory that does
// not answer gets its own code, so the caller does nothing (fail closed).
func (s *Service) directoryPerson(ctx context.Context, userID string, role personRole) (string, error) {
	email, err := s.people.Email(ctx, userID)
	if err != nil {
		if ErrorCode(err) == "" {
			return "", fmt.Errorf("read the chat profile of %s: %w", userID, err)
		}
		return "", WrapError(Forbidden, err, "%s", unknownPerson(role, "Slack shows no usable email address for "+whom(role, "you", "the requester")))
	}
	if id, ok := s.knownAccount(email); ok {
		return id, nil
	}
	u, err := s.dir.FindUser(ctx, email)
	switch code := ErrorCode(err); {
	case err == nil:
	case code == NotFound:
		return "", WrapError(Forbidden, err, "%s", unknownPerson(role, fmt.Sprintf(
			"%s, %s, is not the user principal name, mail or alias of any Entra ID account", slackEmail(role), email)))
	case code == Invalid:
		return "", WrapError(Forbidden, err, "%s", unknownPerson(role, fmt.Sprintf(
			"%s, %s, does not name exactly one Entra ID account", slackEmail(role), email)))
	case code != "":
		// Unavailable (throttling, an outage) or Forbidden (the app may not read users).
		return "", &Error{Code: code, Err: err,
			Message: "tapbot could not check in Entra ID who " + whom(role, "you are", "asked for this pass") + ", so nothing was done: " + UserMessage(err)}
	default:
		return "", fmt.Errorf("find chat user %s in the directory: %w", userID, err)
	}
	if u.ID == "" {
		return "", errors.New("the directory returned a user without an object ID")
	}
	if why := notAPerson(u); why != "" {
		// Not cached: an account enabled again, or made a member, counts at the next click.
		s.log.WarnContext(ctx, "refused a disabled or guest Entra ID account as requester or approver",
			"chat_user", userID, "entra_id", u.ID, "disabled", u.Disabled, "guest", u.IsGuest())
		return "", Errorf(Forbidden, "%s", ineligiblePerson(role, email, why))
	}
	s.keepAccount(email, u.ID)
	return u.ID, nil
}

// notAPerson says why a directory account cannot be one of the four eyes, or "" when it can. A
// disabled account (accountEnabled false; every shared mailbox is one) signs nobody in and may be
// shared by a team; a guest belongs to another organisation, which vouches for it. Either way the
// account does not stand for one accountable person of this tenant.
func notAPerson(u DirectoryUser) string {
	switch {
	case u.Disabled:
		return fmt.Sprintf("the Entra ID account %s is disabled (shared mailboxes are disabled accounts too)", u.UPN)
	case u.IsGuest():
		return fmt.Sprintf("the Entra ID account %s is a guest account from another organisation", u.UPN)
	}
	return ""
}

// ineligiblePerson explains to the person concerned why a chat user whose directory account is
// disabled or a guest may not request or approve.
func ineligiblePerson(role personRole, email, why string) string {
	const rule = "Four-eyes approval needs two people with their own enabled, member Entra ID accounts"
	switch role {
	case asApprover:
		return fmt.Sprintf("You cannot approve passes: your Slack email, %s, belongs to %s. %s, so only such people may approve. Nothing was changed.", email, why, rule)
	case asPastRequester:
		return fmt.Sprintf("Nobody can approve this request: the requester's Slack email, %s, belongs to %s. %s, so only such people may ask for passes. Deny it.", email, why, rule)
	}
	return fmt.Sprintf("You cannot ask for passes: your Slack email, %s, belongs to %s. %s, so only such people may ask for them. Ask from your own account; nothing was requested.", email, why, rule)
}

type cachedAccount struct {
	id   string
	read time.Time
}

// knownAccount returns the directory object ID found for email within GroupCacheTTL. Only
// accounts found are kept: a refusal or an outage is asked again at the next click, so a fixed
// email counts at once. The chat email itself comes from the bot's own short profile cache.
func (s *Service) knownAccount(email string) (string, bool) {
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	a, ok := s.accounts[accountKey(email)]
	if !ok || s.now().Sub(a.read) >= s.cfg.GroupCacheTTL {
		return "", false
	}
	return a.id, true
}

// keepAccount remembers the directory account found for email, and forgets those past the TTL,
// so the map holds only the people seen lately.
func (s *Service) keepAccount(email, id string) {
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	now := s.now()
	for k, a := range s.accounts {
		if now.Sub(a.read) >= s.cfg.GroupCacheTTL {
			delete(s.accounts, k)
		}
	}
	s.accounts[accountKey(email)] = cachedAccount{id: id, read: now}
}

// accountKey is how the directory compares addresses: trimmed, without regard to case.
func accountKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// whom picks the words for the person resolved: mine when they are the one reading, theirs when
// an approver reads about the requester.
func whom(role personRole, mine, theirs string) string {
	if role == asPastRequester {
		return theirs
	}
	return mine
}

func slackEmail(role personRole) string {
	return whom(role, "your Slack email", "the requester's Slack email")
}

// unknownPerson explains, to the person concerned, why tapbot will not act for a chat user it
// cannot match to a directory account, and what fixes it.
func unknownPerson(role personRole, why string) string {
	const rule = "Four-eyes approval compares people by their Entra ID accounts, so only people whose Slack email is an address of their own Entra ID account (its user principal name, mail or an alias)"
	switch role {
	case asApprover:
		return "You cannot approve passes: tapbot cannot tell who you are in Entra ID, because " + why + ". " +
			rule + " may approve. Ask your Slack or Entra ID admin to fix your Slack email; nothing was changed."
	case asPastRequester:
		return "Nobody can approve this request: tapbot cannot tell who asked for it in Entra ID, because " + why + ". " +
			rule + " may ask for passes. Deny it, and ask the requester to have their Slack email fixed first."
	}
	return "You cannot ask for passes: tapbot cannot tell who you are in Entra ID, because " + why + ". " +
		rule + " may ask for them. Ask your Slack or Entra ID admin to fix your Slack email, then try again."
}

// isSelf reports whether the requester is the target: the same chat account, or the same
// directory account behind another chat account or address.
func isSelf(requester, requesterEntraID string, t Target) bool {
	return t.SlackID == requester || sameObject(requesterEntraID, t.EntraID)
}

// fourEyes checks at a decision that the approver is neither the requester nor the target under
// another chat account: the approver is resolved to their directory account now, every time, and
// object IDs are compared. An approver tapbot cannot resolve may not approve.
func (s *Service) fourEyes(ctx context.Context, r *Request, approver string) error {
	approverID, err := s.directoryPerson(ctx, approver, asApprover)
	if err != nil {
		return err
	}
	requesterID := r.RequesterEntraID
	if requesterID == "" {
		// Stored by a replica from before requesters were resolved at Submit.
		if requesterID, err = s.directoryPerson(ctx, r.Requester, asPastRequester); err != nil {
			return err
		}
	}
	var refusal string
	switch {
	case sameObject(approverID, requesterID):
		refusal = "You asked for this pass from another Slack account: both belong to the same Entra ID account, so someone else has to approve it."
	case sameObject(approverID, r.Target.EntraID):
		refusal = fmt.Sprintf("This pass is for your own Entra ID account (%s), so someone else has to approve it.", r.Target.UPN)
	default:
		return nil
	}
	// Another chat account of the requester or the target reached an Approve button: worth a
	// look by whoever reads the logs, like a second reveal.
	s.log.WarnContext(ctx, "refused an approval by the requester or the target under another Slack account",
		"request_id", r.ID, "approver", approver, "approver_entra_id", approverID,
		"requester", r.Requester, "requester_entra_id", requesterID, "target_entra_id", r.Target.EntraID)
	return Errorf(Forbidden, "%s", refusal)
}
