package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// People is what tapbot needs from the chat workspace (Slack).
type People interface {
	// Email returns the user's profile email; an *Error with NotFound when the user does not
	// exist or has no email.
	Email(ctx context.Context, userID string) (string, error)
	// FindByEmail returns the ID of the chat user with that email; ErrNotFound when nobody has it.
	FindByEmail(ctx context.Context, email string) (string, error)
	// GroupMembers returns the user IDs in a user group.
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Config is the policy an organisation sets for tapbot.
type Config struct {
	Approvers       []string // user IDs and user group IDs who may approve
	Requesters      []string // user IDs and user group IDs who may request; empty means anyone
	DefaultLifetime time.Duration
	MaxLifetime     time.Duration
	RequestTTL      time.Duration // how long a pending request stays approvable
	GroupCacheTTL   time.Duration // how long user group membership, and the directory account found for a chat email, are trusted before they are read again

	// Instance names this replica; it marks the requests it is in the middle of changing.
	Instance string
	// IssueLease is how long an approval stays this replica's without a heartbeat: each
	// Heartbeat renews it while the replica works, so a slow Graph call is not taken over, and
	// a replica that stops heartbeating is taken over once its heartbeat runs out. It must
	// comfortably exceed the time between heartbeats, and covers the recipient's DM after the
	// pass is stored.
	IssueLease time.Duration
	// IssueTimeout bounds how long an approval waits on the directory, from the click: the
	// create with all its retries and Retry-After waits, and, when the create timed out, the
	// check for a pass it made anyway. The create gets the first two thirds, the check what is
	// left (at least a third), so the approver hears of a directory that hangs or keeps
	// throttling within IssueTimeout plus the store's and Slack's part. Zero means
	// DefaultIssueTimeout.
	IssueTimeout time.Duration
	// RevealLease bounds how long a reveal may take to reach the recipient's screen between
	// heartbeats; it is renewed like IssueLease.
	RevealLease time.Duration

	// AllowSelfRequest lets a person ask for a pass for themselves (a lost phone); another
	// person must still approve it.
	AllowSelfRequest bool
	// RouteToManager asks the target's manager first, in a DM, when the manager is in chat and
	// is not the requester.
	RouteToManager bool
	// ProtectedGroups are directory group IDs whose members count as privileged targets.
	ProtectedGroups []string
	// ProtectedApprovers, when set, are the only people who may approve a pass for a privileged
	// target; when empty, privileged targets are refused outright.
	ProtectedApprovers []string
	// RatePerRequester caps requests per requester per hour.
	RatePerRequester int
	// AuditRetention is how long the audit trail is kept in the store.
	AuditRetention time.Duration

	// RemindAfter is how long a request waits for a decision before tapbot bumps it to its
	// approvers, once; zero means DefaultRemindAfter, negative never.
	RemindAfter time.Duration
	// WatchInterval is how often tapbot looks at the sign-in methods of a person whose pass was
	// revealed, until it expires; zero means DefaultWatchInterval, negative never.
	WatchInterval time.Duration
	// RevokeAfterRegistration deletes what is left of a pass once the person registered a
	// passkey, security key, Windows Hello or Authenticator with it.
	RevokeAfterRegistration bool

	// TenantWatchInterval is how often Entra ID's audit log is read for passes made outside
	// tapbot; zero means DefaultTenantWatchInterval, negative never.
	TenantWatchInterval time.Duration
	// AuditLogRetention is how long the tenant keeps audit records (7 days Free, 30 P1/P2);
	// zero means DefaultAuditLogRetention. A watcher down longer says what it could not check.
	AuditLogRetention time.Duration
	// OwnAppIDs are the application (client) IDs tapbot acts as in Entra ID: its app
	// registration, or its managed identity. Passes they make are tapbot's.
	OwnAppIDs []string
	// Onboarding turns on the look-ahead for new hires (TAP_ONBOARDING): tapbot asks each
	// hire's manager for a first-morning pass OnboardingNotice before their hire date (zero
	// means DefaultOnboardingNotice), starting at OnboardingStart ("08:00", the requester's
	// time) on the first day.
	Onboarding       bool
	OnboardingNotice time.Duration
	OnboardingStart  string
}

// Defaults for Config fields left zero.
const (
	DefaultLifetime = time.Hour
	DefaultMaxLife  = 8 * time.Hour
	DefaultTTL      = 24 * time.Hour
	DefaultGroupTTL = 5 * time.Minute
	DefaultIssue    = 90 * time.Second
	DefaultReveal   = 30 * time.Second
	DefaultRate     = 10
)

// DefaultIssueTimeout is IssueTimeout's default: one and a half times graph's default attempt
// timeout, well inside the minute within which an approver hears what became of a click.
const DefaultIssueTimeout = 45 * time.Second

// ErrIssueFailed is wrapped by the error Approve returns when this approval ended the request
// Failed, so the caller knows to tell the requester.
var ErrIssueFailed = errors.New("issuing the pass failed")

// ErrExpiredNow is wrapped by the error Approve and Deny return when the click found the request
// past its TTL and ended it Expired.
var ErrExpiredNow = errors.New("request expired")

// ErrAlreadyRevealed is wrapped by the error Reveal returns when the pass was already claimed:
// a signal that someone else may have it.
var ErrAlreadyRevealed = errors.New("pass already revealed")

// Service runs the request -> approve -> issue -> reveal flow. Adapters call it with who did what;
// it checks the rules, changes state atomically through the Store and calls the Directory.
type Service struct {
	cfg    Config
	store  Store
	dir    Directory
	people People
	sealer *Sealer
	now    func() time.Time
	log    *slog.Logger
	// crashAt, set only by tests, is called at each step of issuing and revealing.
	crashAt func(step string)
	sink    AuditSink
	hires   HireDirectory // nil: no onboarding look-ahead
	cohort  cohortCache   // the hires of the Starting soon view

	groupsMu sync.Mutex
	groups   map[string]cachedGroup
	// accounts keeps the directory object IDs found for chat emails, for GroupCacheTTL, so a
	// burst of approvals by one approver costs one directory lookup (see directoryPerson).
	accountsMu sync.Mutex
	accounts   map[string]cachedAccount

	// policyCache keeps the tenant's pass policy for the request form (see FormPolicy).
	policyCache policyCache
	// leases guards what this replica holds and renews with each Heartbeat: the requests it is
	// in the middle of changing, and the sweep turn while it sweeps (see sweep.go).
	leases   sync.Mutex
	holds    map[string]*holding
	sweeping bool
	turn     time.Duration // the sweep turn this replica took; 0 when it holds none
	// turnHolder is what the sweep turn's key holds while it is this replica's: its ID and a
	// token new with each take. A take sends a value nobody wrote before, so finding it already
	// there can only be that same take sent again (CompareAndSwap), never this replica taking a
	// turn it still holds, which would keep the turn from ever passing to another replica.
	turnHolder string
	turnLost   bool

	// auditLog is Entra ID's audit log, for the tenant watcher; nil turns the watcher off.
	auditLog AuditLog
	// tenantOff is set once the app was refused the audit log: the watcher stays off.
	tenantOff atomic.Bool
}

type cachedGroup struct {
	members map[string]bool
	read    time.Time
}

// Option changes how a Service is built.
type Option func(*Service)

// WithClock replaces the wall clock, for tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithCheckpoints calls f at each named step of issuing and revealing, so end-to-end tests can
// kill the process exactly there. Production code never sets it.
func WithCheckpoints(f func(step string)) Option { return func(s *Service) { s.crashAt = f } }

// WithAuditSink hands every audit event to f as well, for example to post it in a channel.
func WithAuditSink(f AuditSink) Option { return func(s *Service) { s.sink = f } }

// WithAuditLog gives the tenant watcher Entra ID's audit log to read.
func WithAuditLog(l AuditLog) Option { return func(s *Service) { s.auditLog = l } }

// WithHires gives the service the directory's hire dates, for the onboarding look-ahead.
func WithHires(h HireDirectory) Option { return func(s *Service) { s.hires = h } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// NewService returns a Service; zero Config durations take their defaults.
func NewService(cfg Config, store Store, dir Directory, people People, sealer *Sealer, opts ...Option) *Service {
	if cfg.DefaultLifetime == 0 {
		cfg.DefaultLifetime = DefaultLifetime
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = DefaultMaxLife
	}
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = DefaultTTL
	}
	if cfg.GroupCacheTTL == 0 {
		cfg.GroupCacheTTL = DefaultGroupTTL
	}
	if cfg.IssueLease == 0 {
		cfg.IssueLease = DefaultIssue
	}
	if cfg.OnboardingStart == "" {
		cfg.OnboardingStart = DefaultOnboardingStart
	}
	if cfg.IssueTimeout <= 0 {
		cfg.IssueTimeout = DefaultIssueTimeout
	}
	if cfg.RevealLease == 0 {
		cfg.RevealLease = DefaultReveal
	}
	if cfg.Instance == "" {
		cfg.Instance = NewID()
	}
	if cfg.RatePerRequester == 0 {
		cfg.RatePerRequester = DefaultRate
	}
	if cfg.AuditRetention == 0 {
		cfg.AuditRetention = DefaultAuditRetention
	}
	s := &Service{
		cfg: cfg, store: store, dir: dir, people: people, sealer: sealer,
		now: time.Now, log: slog.New(slog.DiscardHandler), groups: map[string]cachedGroup{},
		holds: map[string]*holding{}, accounts: map[string]cachedAccount{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Config returns the policy the service runs with, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Draft is a request as a requester typed it.
type Draft struct {
	Requester    string
	TargetUserID string        // chat user ID of the target, or
	TargetEmail  string        // the target's email or UPN
	Lifetime     time.Duration // zero means the default
	UsableOnce   bool
	Reason       string
	// StartsAt is when the pass should start working; zero means as soon as it is approved.
	StartsAt time.Time
	// Onboarding is the key of the new hire's onboarding record when the request comes from
	// its prompt, so the pass is followed to a passkey.
	Onboarding string
}

// MaxStartAhead bounds how far ahead a pass may be asked to start: far enough for a new hire's
// first morning after a holiday, near enough that a pass is not left waiting for weeks in Entra
// ID and in tapbot's store.
const MaxStartAhead = 14 * 24 * time.Hour

// Submit checks a draft against the rules and the tenant's policy, resolves the target in the
// directory and stores a pending request. Nothing is stored when any check fails.
func (s *Service) Submit(ctx context.Context, d Draft) (*Request, error) {
	d.Reason = strings.TrimSpace(d.Reason)
	if d.Reason == "" {
		return nil, onField(Errorf(Invalid, "A reason is required, so approvers know why the pass is needed."), FieldReason)
	}
	if d.TargetUserID == "" && d.TargetEmail == "" {
		return nil, onField(Errorf(Invalid, "Say who the pass is for: a Slack user or an email address."), FieldTarget)
	}
	if d.Onboarding != "" {
		if err := s.onboardingOpen(ctx, d); err != nil {
			return nil, err
		}
	}
	if d.Lifetime == 0 {
		d.Lifetime = s.cfg.DefaultLifetime
	}
	if d.Lifetime < 0 {
		return nil, onField(Errorf(Invalid, "The lifetime must be positive."), FieldLifetime)
	}
	if d.Lifetime > s.cfg.MaxLifetime {
		return nil, onField(Errorf(Invalid, "A pass can last at most %s here; you asked for %s.", FormatDuration(s.cfg.MaxLifetime), FormatDuration(d.Lifetime)), FieldLifetime)
	}
	if err := s.checkStart(d.StartsAt); err != nil {
		return nil, err
	}
	if len(s.cfg.Requesters) > 0 {
		ok, err := s.isMember(ctx, d.Requester, s.cfg.Requesters)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &Error{Code: Forbidden, Who: s.cfg.Requesters,
				Message: "You are not allowed to request passes; ask one of the people who can."}
		}
	}
	if d.TargetUserID != "" && d.TargetUserID == d.Requester && !s.cfg.AllowSelfRequest {
		return nil, onField(selfRequestRefused(), FieldTarget)
	}
	// Counted before any directory lookup, so nobody can probe accounts without limit.
	if err := s.checkRate(ctx, d.Requester); err != nil {
		return nil, err
	}
	// Who asks, as a directory account: the four-eyes rules compare people, not chat accounts,
	// and a requester tapbot cannot place could be anyone, the target or the approver included.
	requesterID, err := s.directoryPerson(ctx, d.Requester, asRequester)
	if err != nil {
		return nil, err
	}

	policy, err := s.dir.PassPolicy(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkPolicy(policy, d); err != nil {
		return nil, err
	}

	target, err := s.resolveTarget(ctx, d)
	if err != nil {
		return nil, onField(err, FieldTarget)
	}
	if !s.cfg.AllowSelfRequest && isSelf(d.Requester, requesterID, target) {
		return nil, onField(selfRequestRefused(), FieldTarget)
	}
	privileges, err := s.dir.Privileges(ctx, target.EntraID, s.cfg.ProtectedGroups)
	if err != nil {
		return nil, err
	}
	if privileges.Privileged() && len(s.cfg.ProtectedApprovers) == 0 {
		return nil, onField(Errorf(Forbidden, "%s is a privileged account (%s). A Temporary Access Pass for it would take over more than one account, so tapbot does not make one; use your organisation's break-glass process.",
			target.UPN, describePrivileges(privileges)), FieldTarget)
	}
	active, err := s.dir.HasActivePass(ctx, target.EntraID)
	if err != nil {
		return nil, err
	}
	id := NewID()
	if err := s.lockTarget(ctx, target, id); err != nil {
		return nil, onField(err, FieldTarget)
	}
	now := s.now()
	r := &Request{
		ID:                 id,
		Requester:          d.Requester,
		RequesterEntraID:   requesterID,
		Target:             target,
		Recipient:          target.SlackID,
		Lifetime:           d.Lifetime,
		UsableOnce:         d.UsableOnce,
		Reason:             d.Reason,
		State:              Pending,
		CreatedAt:          now,
		ExpiresAt:          now.Add(s.cfg.RequestTTL),
		ReplacesActivePass: active,
		StartsAt:           d.StartsAt,
		Onboarding:         d.Onboarding,
	}
	if r.Recipient == "" {
		r.Recipient = d.Requester
	}
	r.Privileged = privileges
	if err := s.routeToManager(ctx, r); err != nil {
		s.releaseTarget(ctx, r)
		return nil, err
	}
	if err := s.store.Create(ctx, r); err != nil {
		s.releaseTarget(ctx, r)
		return nil, storeError(err)
	}
	s.record(ctx, EventRequested, r, r.Requester, "")
	return r, nil
}

func checkPolicy(p PassPolicy, d Draft) error {
	if !p.Enabled {
		return Errorf(Invalid, "Temporary Access Pass is turned off in your Entra ID tenant. An Entra admin must enable it under Authentication methods before tapbot can make passes.")
	}
	if p.MinLifetime > 0 && d.Lifetime < p.MinLifetime || p.MaxLifetime > 0 && d.Lifetime > p.MaxLifetime {
		return onField(Errorf(Invalid, "Your tenant's Temporary Access Pass policy allows lifetimes from %s to %s; you asked for %s.",
			FormatDuration(p.MinLifetime), FormatDuration(p.MaxLifetime), FormatDuration(d.Lifetime)), FieldLifetime)
	}
	if p.OneTimeOnly && !d.UsableOnce {
		return onField(Errorf(Invalid, "Your tenant allows only one-time passes; ask for a one-time pass (`once`)."), FieldUsage)
	}
	return nil
}

func (s *Service) resolveTarget(ctx context.Context, d Draft) (Target, error) {
	var t Target
	lookup := d.TargetEmail
	if d.TargetUserID != "" {
		email, err := s.people.Email(ctx, d.TargetUserID)
		if err != nil {
			return t, err
		}
		t.SlackID = d.TargetUserID
		lookup = email
	}
	u, err := s.dir.FindUser(ctx, lookup)
	if err != nil {
		return t, err
	}
	switch {
	case u.Disabled && d.StartsAt.IsZero():
		// Entra ID refuses a disabled account's sign-in, pass or not. A pass that starts later
		// is allowed: HR provisioning creates a new hire's account disabled and enables it on
		// their first day, which is when a first-morning pass starts.
		return t, Errorf(Invalid, "The Entra ID account %s is disabled, so nobody could sign in with a pass for it (a shared mailbox is a disabled account too). An Entra ID admin must enable it first; for a new hire whose account is enabled on their first day, ask for a pass that starts then.", u.UPN)
	case u.IsGuest():
		return t, Errorf(Forbidden, "%s is a guest account from another organisation. Guests sign in through their own organisation, which also resets their sign-in, so tapbot does not make passes for them.", u.UPN)
	}
	t.EntraID, t.UPN, t.DisplayName, t.Email, t.Mail, t.Disabled = u.ID, u.UPN, u.DisplayName, lookup, u.Mail, u.Disabled
	if t.SlackID != "" {
		return t, nil
	}
	// The person may be in Slack under their UPN rather than the address typed.
	for _, email := range uniqueFold(lookup, u.UPN, u.Mail) {
		id, err := s.people.FindByEmail(ctx, email)
		switch {
		case err == nil:
			t.SlackID = id
			return t, nil
		case !errors.Is(err, ErrNotFound):
			return t, err
		}
	}
	// No Slack account: the requester receives the pass, as the approval message says.
	return t, nil
}

// Approve records approver's yes, creates the pass in the directory and keeps it sealed for its
// one reveal. On a directory failure the request ends Failed and the returned request says why.
// clicked is the approval message the click came from, remembered if the request does not know
// its message yet (a click can beat that write).
//
// While it works, the request is leased to this replica and each Heartbeat renews the lease, so
// a slow Graph call is not mistaken for a dead replica; every step after the first checks that
// the request is still this replica's, so a replica that was taken over anyway never overwrites
// what the sweeper did, and cleans up the pass it made.
func (s *Service) Approve(ctx context.Context, id, approver string, clicked MessageRef) (*Request, error) {
	// The real clock, not s.now: these deadlines bound real waits on the network.
	issueBy := time.Now().Add(s.cfg.IssueTimeout)
	createBy := issueBy.Add(-s.cfg.IssueTimeout / 3)
	r, err := s.decidable(ctx, id, approver, clicked)
	if err != nil {
		return r, err
	}
	// Only once the click could approve, so a stale or refused click costs no Graph call.
	if err := s.fourEyes(ctx, r, approver); err != nil {
		return r, err
	}
	now := s.now()
	r, err = s.transition(ctx, id, Pending, func(r *Request) {
		r.State, r.DecidedBy, r.DecidedAt = Issuing, approver, now
		r.Owner, r.LeaseUntil, r.NotCreated = s.cfg.Instance, now.Add(s.cfg.IssueLease), true
		if r.ApprovalMessage.IsZero() && !clicked.IsZero() {
			r.ApprovalMessage = clicked
		}
	})
	if err != nil {
		return r, err
	}
	release := s.hold(id, s.cfg.IssueLease)
	defer release()
	s.record(ctx, EventApproved, r, approver, "")
	s.checkpoint("approved")

	// From here on a pass may exist, and an interruption must look for it.
	r, err = s.owned(ctx, id, Issuing, func(r *Request) { r.NotCreated = false })
	if err != nil {
		return r, err
	}
	createCtx, cancelCreate := context.WithDeadline(ctx, createBy)
	pass, err := s.dir.CreatePassStarting(createCtx, r.Target.EntraID, s.passStart(r), r.Lifetime, r.UsableOnce)
	cancelCreate()
	if err != nil {
		reason := "Entra ID did not create the pass: " + UserMessage(err)
		if ErrorCode(err) == Unavailable {
			// A call that timed out may still have made a pass: leave no unknown one behind,
			// within what is left of the click's time.
			cleanup, cancel := context.WithDeadline(context.WithoutCancel(ctx), issueBy)
			if derr := s.deleteInterruptedPasses(cleanup, r); derr != nil && !errors.Is(derr, errTargetGone) {
				s.log.ErrorContext(ctx, "could not check for a pass the failed call made; check the target in Entra ID",
					"request_id", id, "target", r.Target.UPN, "err", derr)
				reason += " tapbot could not check whether Entra ID made a pass anyway; check " + r.Target.UPN +
					" in Entra ID and delete any Temporary Access Pass there."
			}
			cancel()
		}
		return s.fail(ctx, r, reason, err)
	}
	s.checkpoint("created")
	// Record the pass's ID before anything else, so an interruption from here on can find and
	// delete it.
	recorded, err := s.owned(ctx, id, Issuing, func(r *Request) {
		r.PassID, r.PassExpiresAt, r.PassStartsAt = pass.ID, pass.ExpiresAt(), pass.StartsAt
	})
	if err != nil {
		s.deletePass(ctx, r, pass.ID)
		if recorded != nil {
			r = recorded
		}
		return r, err
	}
	r = recorded
	s.markIssued(ctx, r, pass)
	s.checkpoint("recorded")
	ttl := pass.ExpiresAt().Sub(s.now())
	if ttl <= 0 {
		s.deletePass(ctx, r, pass.ID)
		return s.fail(ctx, r, "Entra ID returned a pass that had already expired.", errors.New("pass expired on arrival"))
	}
	if err := s.store.PutSecret(ctx, id, s.sealer.Seal(id, []byte(pass.Code)), ttl); err != nil {
		s.deletePass(ctx, r, pass.ID)
		return s.fail(ctx, r, "The pass could not be stored safely, so it was deleted in Entra ID again; nothing was delivered. Ask for a new pass with /tap.", err)
	}
	s.checkpoint("stored")
	issued, err := s.owned(ctx, id, Issuing, func(r *Request) { r.State = Issued })
	if err != nil {
		s.dropLatePass(ctx, r, issued, pass.ID)
		if issued == nil {
			issued = r
		}
		return issued, err
	}
	s.releaseTarget(ctx, issued)
	s.record(ctx, EventIssued, issued, approver, "valid until "+issued.PassExpiresAt.UTC().Format(time.RFC3339))
	s.checkpoint("issued")
	return issued, nil
}

// issuedPassKey marks a pass as recorded by the request that made it, so cleaning up after
// another request for the same person never takes it for its own.
func issuedPassKey(passID string) string { return "issued-pass:" + passID }

// markIssued records that the pass belongs to r until it expires (plus clock skew). It is
// written after r records the pass's ID, so a marked pass is always one some request knows.
func (s *Service) markIssued(ctx context.Context, r *Request, pass Pass) {
	ttl := pass.ExpiresAt().Add(clockSkew).Sub(s.now())
	if ttl <= 0 {
		return
	}
	if err := s.store.Touch(ctx, issuedPassKey(pass.ID), ttl); err != nil {
		s.log.WarnContext(ctx, "could not mark the pass as this request's", "request_id", r.ID, "err", err)
	}
	// For the tenant watcher, as long as the request is kept: audit records arrive late.
	if keep := r.KeepUntil().Sub(s.now()); keep > 0 {
		if _, err := s.store.CompareAndSwap(ctx, passRequestKey(pass.ID), "", r.ID, keep); err != nil {
			s.log.WarnContext(ctx, "could not map the pass to its request for the tenant watcher", "request_id", r.ID, "err", err)
		}
	}
}

// dropLatePass cleans up after this replica lost its request to a takeover after it made and
// stored a pass (it was too slow, and the sweeper ended the request): unless the replica that
// took over is delivering this very pass, the sealed copy and the pass are deleted, so nothing
// that nobody will deliver stays behind. current is the request as the takeover left it; nil
// when the store could not say, in which case the sweeper decides later.
func (s *Service) dropLatePass(ctx context.Context, mine, current *Request, passID string) {
	if current == nil || current.Owner == s.cfg.Instance {
		return
	}
	if current.PassID == passID && (current.State == Issued || current.State == Revealing || current.State == Revealed) {
		return // the replica that took over delivers it
	}
	s.log.WarnContext(ctx, "another replica ended this request while this one was storing its pass; deleting the pass",
		"request_id", mine.ID, "state", string(current.State))
	if err := s.store.DeleteSecret(ctx, mine.ID); err != nil {
		s.log.ErrorContext(ctx, "could not delete a sealed pass nobody will deliver; it expires with the pass",
			"request_id", mine.ID, "err", err)
	}
	s.deletePass(ctx, mine, passID)
}

// deletePass removes a pass nobody will ever see, so no live credential is left behind. The
// error says the pass may still be live; it is logged here already.
func (s *Service) deletePass(ctx context.Context, r *Request, passID string) error {
	if passID == "" {
		return nil
	}
	if err := s.dir.DeletePass(ctx, r.Target.EntraID, passID); err != nil {
		s.log.ErrorContext(ctx, "could not delete an undelivered pass in Entra ID; delete it by hand",
			"request_id", r.ID, "target", r.Target.UPN, "pass_id", passID, "err", err)
		return err
	}
	s.log.InfoContext(ctx, "undelivered pass deleted", "request_id", r.ID, "target", r.Target.UPN)
	return nil
}

// checkpoint lets tests stop the process at a named step, as a crash would.
func (s *Service) checkpoint(step string) {
	if s.crashAt != nil {
		s.crashAt(step)
	}
}

// fail ends an Issuing request as Failed with a reason people can read, and returns it with an
// *Error carrying that reason.
func (s *Service) fail(ctx context.Context, r *Request, reason string, cause error) (*Request, error) {
	s.log.ErrorContext(ctx, "issuing failed", "request_id", r.ID, "err", cause)
	failed, err := s.owned(ctx, r.ID, Issuing, func(r *Request) {
		r.State, r.Failure, r.Owner, r.LeaseUntil = Failed, reason, "", time.Time{}
	})
	if err != nil {
		if failed == nil {
			failed = r
		}
		return failed, err
	}
	s.releaseTarget(ctx, failed)
	s.record(ctx, EventIssueFailed, failed, r.DecidedBy, reason)
	code := ErrorCode(cause)
	if code == "" {
		code = Unavailable
	}
	return failed, &Error{Code: code, Message: reason, Err: fmt.Errorf("%w: %w", ErrIssueFailed, cause)}
}

// Deny records approver's no. The directory is never called: a no creates nothing, so it works
// while Entra ID is down, and it is not held to the directory identity check Approve makes (a
// requester's other chat account denying only does what Cancel does). clicked is as for Approve.
func (s *Service) Deny(ctx context.Context, id, approver string, clicked MessageRef) (*Request, error) {
	r, err := s.decidable(ctx, id, approver, clicked)
	if err != nil {
		return r, err
	}
	now := s.now()
	r, err = s.transition(ctx, id, Pending, func(r *Request) {
		r.State, r.DecidedBy, r.DecidedAt = Denied, approver, now
		if r.ApprovalMessage.IsZero() && !clicked.IsZero() {
			r.ApprovalMessage = clicked
		}
	})
	if err == nil {
		s.releaseTarget(ctx, r)
		s.record(ctx, EventDenied, r, approver, "")
	}
	return r, err
}

// decidable loads a request and checks that approver may decide it now. A pending request past
// its TTL is moved to Expired on the way.
func (s *Service) decidable(ctx context.Context, id, approver string, clicked MessageRef) (*Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.mayDecide(ctx, r, approver); err != nil {
		return r, err
	}
	if err := s.sameMessage(ctx, r, clicked, r.ApprovalMessage, approver); err != nil {
		return r, err
	}
	if r.State != Pending {
		return r, stateConflict(r)
	}
	if !s.now().Before(r.ExpiresAt) {
		expired, err := s.transition(ctx, id, Pending, func(r *Request) {
			r.State = Expired
			if r.ApprovalMessage.IsZero() && !clicked.IsZero() {
				r.ApprovalMessage = clicked
			}
		})
		if err != nil {
			return r, err
		}
		s.releaseTarget(ctx, expired)
		s.record(ctx, EventExpired, expired, "", "no decision within TAP_REQUEST_TTL")
		return expired, &Error{Code: Conflict, Err: ErrExpiredNow,
			Message: "This request expired without a decision; ask the requester to make a new one with /tap."}
	}
	return r, nil
}

func (s *Service) mayDecide(ctx context.Context, r *Request, approver string) error {
	switch approver {
	case r.Requester:
		return Errorf(Forbidden, "You asked for this pass, so someone else has to approve it.")
	case r.Target.SlackID:
		return Errorf(Forbidden, "This pass is for you, so someone else has to approve it.")
	}
	approvers := s.approversFor(r)
	ok := approver == r.Manager && !r.Privileged.Privileged()
	if !ok {
		var err error
		if ok, err = s.isMember(ctx, approver, approvers); err != nil {
			return err
		}
	}
	if !ok {
		msg := "You may not approve or deny this request; ask one of the people who can."
		if r.Privileged.Privileged() {
			msg = "This pass is for a privileged account, so only the protected approvers may decide it; ask one of them."
		}
		return &Error{Code: Forbidden, Message: msg, Who: approvers}
	}
	if r.Target.SlackID == "" {
		// The target was not found in Slack by email; make sure the approver is not them under
		// another Slack account that carries the same address.
		email, err := s.people.Email(ctx, approver)
		if err != nil && ErrorCode(err) == "" {
			return err
		}
		if email != "" && r.Target.Matches(email) {
			return Errorf(Forbidden, "This pass is for you, so someone else has to approve it.")
		}
	}
	return nil
}

// uniqueFold returns the non-empty strings, without case-insensitive repeats.
func uniqueFold(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s == "" {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || strings.EqualFold(o, s)
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// stateConflict says, for a person, why a request cannot be decided any more.
func stateConflict(r *Request) error {
	switch r.State {
	case Denied:
		return Errorf(Conflict, "This request was already denied.")
	case Expired:
		return Errorf(Conflict, "This request expired without a decision; ask for a new one with /tap.")
	case Cancelled:
		return Errorf(Conflict, "This request was cancelled: %s", r.Failure)
	case Failed:
		return Errorf(Conflict, "This request already failed: %s", r.Failure)
	case Issuing, Issued, Revealing, Revealed:
		return Errorf(Conflict, "This request was already approved.")
	case Revoked:
		return Errorf(Conflict, "This pass was already revoked.")
	}
	return Errorf(Conflict, "This request is %s and cannot be changed.", r.State)
}

// transition moves a request from one state atomically; if another replica moved it first, the
// returned error explains the state it is in now.
func (s *Service) transition(ctx context.Context, id string, from State, change func(*Request)) (*Request, error) {
	var current *Request
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		if r.State != from {
			current = r.Clone()
			return ErrConflict
		}
		change(r)
		return nil
	})
	if errors.Is(err, ErrConflict) && current != nil {
		return current, stateConflict(current)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return r, nil
}

// owned is transition for the replica that owns the request's in-flight change: it also fails
// when another replica has taken the change over, so a slow owner never overwrites a takeover.
// On a conflict it returns the request as it is now.
func (s *Service) owned(ctx context.Context, id string, from State, change func(*Request)) (*Request, error) {
	var current *Request
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		if r.State != from || r.Owner != s.cfg.Instance {
			current = r.Clone()
			return ErrConflict
		}
		change(r)
		return nil
	})
	if errors.Is(err, ErrConflict) && current != nil {
		if current.State == from {
			return current, &Error{Code: Conflict, Err: ErrConflict,
				Message: "This took too long, so another tapbot replica took the request over; it finishes or reports it."}
		}
		return current, stateConflict(current)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return r, nil
}

// ErrRevealInProgress is wrapped by the error Reveal returns while another click of the same
// recipient is putting the pass on screen.
var ErrRevealInProgress = errors.New("reveal in progress")

// ErrPassLost is wrapped by the error Reveal returns when the sealed pass was no longer in the
// store: nobody can see it through tapbot, and the pass was deleted in Entra ID.
var ErrPassLost = errors.New("the sealed pass is no longer in the store")

// claimHold is how long a reveal's claim keeps the sealed pass it took (never past the pass's
// end): long enough for a take sent again after a lost reply, or for the next click after a take
// whose outcome was unknown, to find it; short enough that no claimed copy lingers.
const claimHold = 5 * time.Minute

// Reveal claims the pass for the recipient. Only the click that moves the request from Issued
// to Revealing takes the sealed pass, and it takes it with one atomic step, so of any number of
// concurrent clicks on any number of replicas only one gets it. The caller must then call
// ConfirmReveal once the pass is on screen (or may be: an unclear answer from the chat service
// counts as shown), or ReturnPass if it was certainly not shown.
//
// clicked is the message the click came from; a button whose request ID belongs to another
// message is refused.
func (s *Service) Reveal(ctx context.Context, id, clicker string, clicked MessageRef) (*Request, string, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if err := s.sameMessage(ctx, r, clicked, r.RevealMessage, clicker); err != nil {
		return r, "", err
	}
	if clicker != r.Recipient {
		s.record(ctx, EventRevealRefused, r, clicker, "not the recipient")
		return r, "", Errorf(Forbidden, "This pass is not for you; only the person it was sent to can reveal it.")
	}
	if err := s.revealable(ctx, r, clicker); err != nil {
		return r, "", err
	}
	var current *Request
	r, err = s.store.Update(ctx, id, func(r *Request) error {
		if r.State != Issued {
			current = r.Clone()
			return ErrConflict
		}
		r.State, r.Owner, r.LeaseUntil = Revealing, s.cfg.Instance, s.now().Add(s.cfg.RevealLease)
		if r.RevealToken == "" {
			// A token left by an earlier attempt whose take had no clear outcome is kept: the
			// claim that take may have made is this attempt's to pick up.
			r.RevealToken = NewID()
		}
		return nil
	})
	if errors.Is(err, ErrConflict) && current != nil {
		return current, "", s.revealable(ctx, current, clicker)
	}
	if err != nil {
		return nil, "", storeError(err)
	}
	// Renewed until ConfirmReveal or ReturnPass, or until this call fails.
	release := s.hold(id, s.cfg.RevealLease)
	s.checkpoint("revealing")
	r, code, err := s.claimSecret(ctx, r, clicker)
	if err != nil {
		release()
	}
	return r, code, err
}

// claimSecret takes the sealed pass of a request this replica has just moved to Revealing, under
// the request's reveal token, and opens it. A pass that cannot be shown now but is intact (this
// replica's keys do not open it, or the claim is not safe on a replica yet) goes back unseen.
func (s *Service) claimSecret(ctx context.Context, r *Request, clicker string) (*Request, string, error) {
	id := r.ID
	sealed, err := s.store.TakeSecret(ctx, id, s.cfg.Instance, r.RevealToken, claimHold)
	switch {
	case errors.Is(err, ErrStaleReveal):
		// This replica was too slow: a sweeper took the reveal over meanwhile, and the pass is
		// its to show or give up now. Nothing was taken here.
		s.log.WarnContext(ctx, "reveal: another replica took this reveal over before the pass was taken; nothing is shown here", "request_id", id)
		current, gerr := s.store.Get(ctx, id)
		if gerr != nil {
			current = r
		}
		return current, "", &Error{Code: Conflict, Err: err,
			Message: "This took too long, so another tapbot replica took your reveal over, and nothing was shown here. Close this and click *Reveal pass* again."}
	case errors.Is(err, ErrNotFound):
		return s.lostPass(ctx, r, clicker, false)
	case errors.Is(err, ErrClaimedElsewhere):
		return s.lostPass(ctx, r, clicker, true)
	case errors.Is(err, ErrNotReplicated):
		s.log.WarnContext(ctx, "reveal: no replica of the store acknowledged the claim in time, so the pass is not shown and goes back unseen",
			"request_id", id, "err", err)
		return s.putBack(ctx, r, sealed, WrapError(Unavailable, err,
			"Your pass is temporarily unavailable: tapbot's store could not confirm your claim on its replica in time, so it was not shown. It is still sealed and unseen: click Reveal pass again in a minute."))
	case err != nil:
		// Whether the take ran is unknown. The request goes back to Issued with its token, so
		// the next click finds the claim this take may have made.
		back, rerr := s.owned(ctx, id, Revealing, func(r *Request) { r.State, r.Owner, r.LeaseUntil = Issued, "", time.Time{} })
		if rerr != nil {
			s.log.ErrorContext(ctx, "reveal: could not release the claim", "request_id", id, "err", rerr)
			back = r
		}
		return back, "", storeError(err)
	}
	code, err := s.sealer.Open(id, sealed)
	if err != nil {
		// The pass is intact; this replica's keys just do not open it: a rotation rolling out
		// (another replica sealed it with a key this one lacks) or a mistyped key. Deleting the
		// pass would make one misconfigured replica destroy every pass it touches.
		s.log.ErrorContext(ctx, "reveal: the sealed pass does not open with this replica's TAP_ENCRYPTION_KEY, so it goes back unseen. "+
			"Every replica must be able to open what any replica seals: add a new key everywhere as a second key before making it the first",
			"request_id", id, "keys", s.sealer.KeyIDs(), "err", err)
		return s.putBackUnopened(ctx, r, sealed, WrapError(Unavailable, err,
			"Your pass is temporarily unavailable: this tapbot replica cannot unseal it right now. It is still sealed and unseen: try again in a minute, and tell your IT team if this keeps happening."))
	}
	s.log.InfoContext(ctx, "pass claimed for reveal", "request_id", id, "recipient", clicker)
	s.checkpoint("claimed")
	return r, string(code), nil
}

// putBack returns a claimed pass, sealed as it was taken, to the store for the next click and
// moves the request back to Issued; cause is what the clicker is told. If the pass cannot be put
// back, the request still goes back to Issued with its token, whose claim keeps the pass for the
// next click a few minutes. A request that meanwhile ended or was taken over gets nothing back:
// the store drops the copy (Store.ReturnSecret), and whoever ended it told the people involved.
func (s *Service) putBack(ctx context.Context, r *Request, sealed []byte, cause error) (*Request, string, error) {
	return s.returnSealed(ctx, r, sealed, cause, false)
}

// putBackUnopened is putBack for a pass this replica could not unseal; the request remembers
// since when that happens, for the sweeper to report honestly a pass that expires unopened.
func (s *Service) putBackUnopened(ctx context.Context, r *Request, sealed []byte, cause error) (*Request, string, error) {
	return s.returnSealed(ctx, r, sealed, cause, true)
}

func (s *Service) returnSealed(ctx context.Context, r *Request, sealed []byte, cause error, unopened bool) (*Request, string, error) {
	now, token := s.now(), r.RevealToken
	if ttl := r.PassExpiresAt.Sub(now); ttl > 0 {
		err := s.store.ReturnSecret(ctx, r.ID, s.cfg.Instance, token, sealed, ttl)
		switch {
		case errors.Is(err, ErrStaleReveal):
			s.log.WarnContext(ctx, "reveal: the request ended or was taken over meanwhile; its sealed copy is dropped, not put back", "request_id", r.ID)
			current, gerr := s.store.Get(ctx, r.ID)
			if gerr != nil {
				current = r
			}
			return current, "", cause
		case err != nil:
			s.log.ErrorContext(ctx, "reveal: could not put the unseen pass back; its claim keeps it for the next click", "request_id", r.ID, "err", err)
		default:
			token = ""
		}
	}
	back, err := s.owned(ctx, r.ID, Revealing, func(r *Request) {
		r.State, r.Owner, r.LeaseUntil, r.RevealToken = Issued, "", time.Time{}, token
		if unopened && r.UnopenedAt.IsZero() {
			r.UnopenedAt = now
		}
	})
	if err != nil {
		s.log.ErrorContext(ctx, "reveal: could not release the claim", "request_id", r.ID, "err", err)
		back = r
	}
	return back, "", cause
}

// lostPass ends a reveal that found no sealed pass to show: it expired in the store, the store
// lost it (a restart, or a failover without its last writes), or (elsewhere) another reveal
// attempt holds it. Nobody can see it through tapbot any more, so the pass is deleted in Entra
// ID and the request fails, saying why; only another attempt's claim means someone else may
// have it, and only that raises the alarm.
func (s *Service) lostPass(ctx context.Context, r *Request, clicker string, elsewhere bool) (*Request, string, error) {
	s.log.WarnContext(ctx, "reveal: no sealed pass to show; deleting the pass in Entra ID", "request_id", r.ID, "claimed_elsewhere", elsewhere)
	deleteErr := s.deletePass(ctx, r, r.PassID)
	deleted := "It was deleted in Entra ID for safety; ask for a new one with /tap."
	if deleteErr != nil {
		deleted = fmt.Sprintf("tapbot could not delete it in Entra ID: delete the Temporary Access Pass of %s there by hand, and ask for a new one with /tap.", r.Target.UPN)
	}
	failure := "The pass was no longer in tapbot's store when it was to be revealed (it expired there, or the store lost it), so nobody saw it through tapbot. " + deleted
	msg := "Your pass is no longer in tapbot's store, so it cannot be shown, and nobody has seen it through tapbot. " + deleted
	cause := ErrPassLost
	if elsewhere {
		failure = "Another reveal had already taken the pass from tapbot's store, so someone may have seen it. " + deleted
		msg = "This pass was already taken by another reveal, so someone may have seen it. " + deleted + " If that was not you, tell your IT team now."
		cause = ErrAlreadyRevealed
	}
	failed, err := s.owned(ctx, r.ID, Revealing, func(r *Request) {
		r.State, r.Failure, r.Owner, r.LeaseUntil, r.RevealToken = Failed, failure, "", time.Time{}, ""
	})
	if err != nil {
		s.log.ErrorContext(ctx, "reveal: could not record the lost pass", "request_id", r.ID, "err", err)
		failed = r
	}
	s.dropSealedCopy(ctx, failed)
	if elsewhere {
		s.record(ctx, EventRevealRefused, failed, clicker, "already revealed: someone else may have the pass")
	}
	s.record(ctx, EventRevoked, failed, "", "the sealed pass was gone from the store at its reveal; the pass was deleted in Entra ID for safety")
	return failed, "", &Error{Code: Conflict, Err: cause, Message: msg}
}

// revealable explains, for a click, why a request cannot be revealed now; nil when it can.
func (s *Service) revealable(ctx context.Context, r *Request, clicker string) error {
	switch r.State {
	case Issued:
		if !s.now().Before(r.PassExpiresAt) {
			return Errorf(Conflict, "This pass expired at %s; ask for a new one.", r.PassExpiresAt.UTC().Format(time.RFC1123))
		}
		return nil
	case Revealed:
		return s.alreadyRevealed(ctx, r, clicker)
	case Revealing:
		return &Error{Code: Conflict, Err: ErrRevealInProgress,
			Message: "Your pass is being shown in another window right now. If it does not appear, close this and click *Reveal pass* again in a few seconds."}
	}
	return stateConflict(r)
}

// unhold stops renewing the lease of a reveal this replica has finished, however it went.
func (s *Service) unhold(id string) {
	s.leases.Lock()
	delete(s.holds, id)
	s.leases.Unlock()
}

// ConfirmReveal records that the recipient has seen the pass (or may have: the caller could not
// tell), and drops the claimed copy.
//
// When the request is no longer this reveal's (this replica was so slow that a sweeper took the
// reveal over), the pass is on a screen although tapbot let go of it: someone else may have been
// shown it as well, or may be about to. That is settled in doubt's favour (shownInDoubt): the
// pass is deleted in Entra ID, the request ends without a Reveal button, an alert is raised and
// the returned *Error tells the recipient the truth.
func (s *Service) ConfirmReveal(ctx context.Context, id string) (*Request, error) {
	s.unhold(id)
	now := s.now()
	r, err := s.owned(ctx, id, Revealing, func(r *Request) {
		r.State, r.RevealedAt, r.Owner, r.LeaseUntil, r.RevealToken = Revealed, now, "", time.Time{}, ""
	})
	if err == nil {
		s.dropSealedCopy(ctx, r)
		s.record(ctx, EventRevealed, r, r.Recipient, "")
		s.startWatching(ctx, r)
		return r, nil
	}
	if r == nil || ErrorCode(err) != Conflict {
		// The store could not say: the request stays Revealing under this replica's name, and
		// the sweeper, finding its pass claimed, deletes it for safety.
		return r, err
	}
	return s.shownInDoubt(ctx, r)
}

// DoubtDetail is the audit detail of EventRevealInDoubt.
const DoubtDetail = "the pass was put on screen after another tapbot replica had taken the reveal over, so it may have been shown twice; it was deleted in Entra ID"

// shownInDoubt ends a request whose pass this replica showed after it had lost the reveal to a
// takeover (current is the request as it is now): nobody can say how many people have it, so it
// is deleted in Entra ID, the request ends Failed (unless it already ended), its sealed copies go,
// and an alert is raised.
func (s *Service) shownInDoubt(ctx context.Context, current *Request) (*Request, error) {
	s.log.ErrorContext(ctx, "reveal: the pass was shown after another replica took the reveal over; it may have been shown twice, so it is deleted in Entra ID",
		"request_id", current.ID, "state", string(current.State), "owner", current.Owner)
	deleted := "It was deleted in Entra ID for safety."
	if err := s.deletePass(ctx, current, current.PassID); err != nil {
		deleted = fmt.Sprintf("tapbot could not delete it in Entra ID: delete the Temporary Access Pass of %s there by hand now.", current.Target.UPN)
	}
	failure := "tapbot was so slow showing the pass that another replica took the reveal over, so the pass may have been shown twice. " + deleted + " Ask for a new one with /tap."
	ended, err := s.store.Update(ctx, current.ID, func(r *Request) error {
		switch {
		case r.State == Failed:
			// The sweeper that took the reveal over ended it (the pass deleted for safety): its
			// reason now says what else happened, for the requester told next.
			r.Failure = failure
		case r.State.Final():
			return ErrConflict
		default:
			r.State, r.Failure, r.Owner, r.LeaseUntil, r.RevealToken = Failed, failure, "", time.Time{}, ""
		}
		return nil
	})
	switch {
	case err == nil:
	case errors.Is(err, ErrConflict):
		if ended, err = s.store.Get(ctx, current.ID); err != nil {
			ended = current
		}
	default:
		s.log.ErrorContext(ctx, "reveal: could not end the request whose pass may have been shown twice", "request_id", current.ID, "err", err)
		ended = current
	}
	s.dropSealedCopy(ctx, ended)
	s.record(ctx, EventRevealInDoubt, ended, "", DoubtDetail)
	return ended, &Error{Code: Conflict, Err: ErrShownInDoubt,
		Message: "tapbot took so long to show your pass that another tapbot replica took over, so the pass may have been shown twice. " + deleted + " If the pass you see works, do not use it; ask for a new one with /tap, and tell your IT team."}
}

// ErrShownInDoubt is wrapped by the error ConfirmReveal returns when the pass reached a screen
// after the reveal was taken over: it may have been shown twice, and it was deleted.
var ErrShownInDoubt = errors.New("the pass may have been shown twice")

// ReturnPass puts a claimed pass back when it was certainly not put on screen (the chat service
// refused the window), so the recipient can click again instead of losing it. If the store
// cannot keep it, nobody will ever see it, so it is deleted in Entra ID and the request fails. A
// request that ended or was taken over meanwhile gets nothing back (Store.ReturnSecret).
func (s *Service) ReturnPass(ctx context.Context, id, code string) (*Request, error) {
	s.unhold(id)
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ttl := r.PassExpiresAt.Sub(s.now())
	if ttl <= 0 {
		s.dropSealedCopy(ctx, r) // the sweeper expires the request
		return s.owned(ctx, id, Revealing, func(r *Request) { r.State, r.Owner, r.LeaseUntil, r.RevealToken = Issued, "", time.Time{}, "" })
	}
	err = s.store.ReturnSecret(ctx, id, s.cfg.Instance, r.RevealToken, s.sealer.Seal(id, []byte(code)), ttl)
	if errors.Is(err, ErrStaleReveal) {
		s.log.WarnContext(ctx, "reveal: the request ended or was taken over meanwhile; its unseen pass is dropped, not put back", "request_id", id)
		current, gerr := s.store.Get(ctx, id)
		if gerr != nil {
			current = r
		}
		return current, &Error{Code: Conflict, Err: err,
			Message: "Slack did not let me show your pass, and meanwhile another tapbot replica took your reveal over. Nothing was shown; click *Reveal pass* again if it is still offered."}
	}
	if err != nil {
		s.log.ErrorContext(ctx, "reveal: could not put the unseen pass back; deleting it in Entra ID", "request_id", id, "err", err)
		deleted := "so it was deleted in Entra ID; nobody saw it. Ask for a new one with /tap."
		if derr := s.deletePass(ctx, r, r.PassID); derr != nil {
			deleted = fmt.Sprintf("and it could not be deleted in Entra ID either: delete the Temporary Access Pass of %s there by hand, and ask for a new one with /tap.", r.Target.UPN)
		}
		failed, ferr := s.owned(ctx, id, Revealing, func(r *Request) {
			r.State, r.Owner, r.LeaseUntil, r.RevealToken = Failed, "", time.Time{}, ""
			r.Failure = "The pass could not be shown and tapbot's store could not keep it, " + deleted
		})
		if ferr != nil {
			s.log.ErrorContext(ctx, "reveal: could not record the lost pass; the sweeper will", "request_id", id, "err", ferr)
			failed = r
		} else {
			s.dropSealedCopy(ctx, failed)
			s.record(ctx, EventRevoked, failed, "", "the pass could not be shown or kept; it was deleted in Entra ID")
		}
		return failed, WrapError(Unavailable, err, "Slack did not let me show your pass, and tapbot could not keep it, %s", deleted)
	}
	r, err = s.owned(ctx, id, Revealing, func(r *Request) { r.State, r.Owner, r.LeaseUntil, r.RevealToken = Issued, "", time.Time{}, "" })
	if err != nil {
		if r != nil && r.State.Final() {
			// Taken over meanwhile and ended (the pass deleted for safety): the copy just put
			// back must not outlive it.
			s.dropSealedCopy(ctx, r)
		}
		return r, err
	}
	s.log.InfoContext(ctx, "pass returned unseen", "request_id", id)
	return r, nil
}

func (s *Service) alreadyRevealed(ctx context.Context, r *Request, clicker string) error {
	s.record(ctx, EventRevealRefused, r, clicker, "already revealed: someone else may have the pass")
	return &Error{Code: Conflict, Err: ErrAlreadyRevealed,
		Message: "This pass was already revealed, and a pass is shown only once. If that was not you, tell your IT team now."}
}

// Get returns a request, with a readable error when it does not exist.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	if !ValidID(id) {
		return nil, Errorf(NotFound, "This request does not exist.")
	}
	r, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(NotFound, "This request no longer exists.")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return r, nil
}

// Cancel ends a pending request that could not be put before the approvers, with reason.
func (s *Service) Cancel(ctx context.Context, id, reason string) (*Request, error) {
	r, err := s.transition(ctx, id, Pending, func(r *Request) { r.State, r.Failure = Cancelled, reason })
	if err == nil {
		s.releaseTarget(ctx, r)
		s.record(ctx, EventCancelled, r, "", reason)
	}
	return r, err
}

// SetApprovalMessage remembers where the approval message is, so any replica can update it.
func (s *Service) SetApprovalMessage(ctx context.Context, id string, m MessageRef) (*Request, error) {
	return s.store.Update(ctx, id, func(r *Request) error { r.ApprovalMessage = m; return nil })
}

// HoldDelivery keeps an issued request this replica's while it sends the recipient's Reveal
// DM: the heartbeat renews its lease, so a DM that waits on Slack's rate limits longer than
// IssueLease is not taken over and sent twice by a sweeper. The returned func stops the
// renewals; Delivered or Undeliverable lets the request go.
func (s *Service) HoldDelivery(id string) (release func()) { return s.hold(id, s.cfg.IssueLease) }

// Delivered records where the recipient's reveal message is; delivery was the last step of
// approving, so the request is no longer this replica's to finish.
func (s *Service) Delivered(ctx context.Context, id string, m MessageRef) (*Request, error) {
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		r.RevealMessage = m
		s.letGo(r)
		return nil
	})
	if err != nil {
		return nil, storeError(err)
	}
	return r, nil
}

// Undeliverable records that the recipient could not be sent the reveal message and that the
// people involved were told, so no replica tries again.
func (s *Service) Undeliverable(ctx context.Context, id string) (*Request, error) {
	r, err := s.store.Update(ctx, id, func(r *Request) error { s.letGo(r); return nil })
	if err != nil {
		return nil, storeError(err)
	}
	return r, nil
}

// sameMessage refuses a click whose button carries this request's ID but sits on another
// request's message: a tampered payload. Unknown messages (not recorded yet) are let through,
// since the ID alone is checked against everything else.
func (s *Service) sameMessage(ctx context.Context, r *Request, clicked, known MessageRef, actor string) error {
	if owner, ok := clicked.homeOf(); ok {
		// App Home is not a message: the click is accepted only from the person whose App Home
		// it is, and every other rule is still checked by the caller.
		if owner == actor {
			return nil
		}
		s.log.WarnContext(ctx, "refused a click: it claims to come from someone else's App Home",
			"request_id", r.ID, "actor", actor, "home_of", owner)
		return Errorf(Forbidden, "This button is not on your App Home; nothing was changed.")
	}
	if clicked.IsZero() || known.IsZero() || clicked == known {
		return nil
	}
	s.log.WarnContext(ctx, "refused a click: the button's request ID belongs to another message",
		"request_id", r.ID, "actor", actor, "clicked_channel", clicked.Channel, "clicked_ts", clicked.TS)
	return Errorf(Forbidden, "This button does not belong to this request; nothing was changed.")
}

// storeError turns a store failure into what users see: nothing was done, try later.
func storeError(err error) error {
	return WrapError(Unavailable, err, "tapbot's store is temporarily unavailable; nothing was done. Please try again in a minute.")
}

// isMember reports whether user is listed directly or through a user group.
func (s *Service) isMember(ctx context.Context, user string, list []string) (bool, error) {
	for _, id := range list {
		if id == user {
			return true, nil
		}
	}
	for _, id := range list {
		if !strings.HasPrefix(id, "S") {
			continue
		}
		members, err := s.groupMembers(ctx, id)
		if err != nil {
			return false, err
		}
		if members[user] {
			return true, nil
		}
	}
	return false, nil
}

func (s *Service) groupMembers(ctx context.Context, group string) (map[string]bool, error) {
	s.groupsMu.Lock()
	g, ok := s.groups[group]
	s.groupsMu.Unlock()
	if ok && s.now().Sub(g.read) < s.cfg.GroupCacheTTL {
		return g.members, nil
	}
	ids, err := s.people.GroupMembers(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("read members of user group %s: %w", group, err)
	}
	g = cachedGroup{members: make(map[string]bool, len(ids)), read: s.now()}
	for _, id := range ids {
		g.members[id] = true
	}
	s.groupsMu.Lock()
	s.groups[group] = g
	s.groupsMu.Unlock()
	return g.members, nil
}

// letGo ends this replica's ownership of a delivery it finished. A reveal click that beat the
// record (Revealing, owned by the replica showing the pass) or a takeover keeps its owner.
func (s *Service) letGo(r *Request) {
	if r.State == Issued && r.Owner == s.cfg.Instance {
		r.Owner, r.LeaseUntil = "", time.Time{}
	}
}
