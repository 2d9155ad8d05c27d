package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// EventRegistered is the audit event of a person registering a strong sign-in method after
// their pass was revealed: the pass has done its job.
const EventRegistered = "method_registered"

// DefaultWatchInterval is how often a revealed pass's person is looked at (TAP_WATCH_INTERVAL).
const DefaultWatchInterval = time.Minute

// MethodKind is the type of a sign-in method, as Microsoft Graph names it.
type MethodKind string

// The sign-in methods Graph reports. FIDO2 covers security keys and passkeys, including
// passkeys in Microsoft Authenticator; PlatformCredential is macOS Platform SSO.
const (
	MethodFIDO2              MethodKind = "fido2"
	MethodWindowsHello       MethodKind = "windowsHelloForBusiness"
	MethodAuthenticator      MethodKind = "microsoftAuthenticator"
	MethodPlatformCredential MethodKind = "platformCredential"
	MethodPassword           MethodKind = "password"
	MethodPhone              MethodKind = "phone"
	MethodEmail              MethodKind = "email"
	MethodSoftwareOath       MethodKind = "softwareOath"
	MethodTemporaryPass      MethodKind = "temporaryAccessPass"
	MethodOther              MethodKind = "other"
)

// Strong reports whether a method is what a Temporary Access Pass is for: a passwordless,
// phishing-resistant or app-based way in that replaces the pass.
func (k MethodKind) Strong() bool {
	switch k {
	case MethodFIDO2, MethodWindowsHello, MethodAuthenticator, MethodPlatformCredential:
		return true
	}
	return false
}

// AuthMethod is one registered sign-in method, without any secret.
type AuthMethod struct {
	ID   string
	Kind MethodKind
	// Name is what the person or their device called it (a key's or phone's name); may be empty.
	Name string
	// CreatedAt is when it was registered; zero when Entra ID does not say (Authenticator set up
	// for notifications only has none).
	CreatedAt time.Time
}

// Describe names the method in a few plain words (no chat markup; adapters escape it).
func (m AuthMethod) Describe() string {
	what := map[MethodKind]string{
		MethodFIDO2:              "a passkey or security key",
		MethodWindowsHello:       "Windows Hello for Business",
		MethodAuthenticator:      "the Microsoft Authenticator app",
		MethodPlatformCredential: "a Mac platform credential (Platform SSO)",
	}[m.Kind]
	if what == "" {
		what = "a sign-in method (" + string(m.Kind) + ")"
	}
	if m.Name != "" {
		what += " (" + m.Name + ")"
	}
	return what
}

// Registration is a strong sign-in method a person registered after their pass was revealed.
type Registration struct {
	// Request is the request as it is now: Revoked when the rest of its pass was deleted.
	Request *Request
	Method  AuthMethod
	// Revoked is set when TAP_REVOKE_AFTER_REGISTRATION deleted the rest of the pass.
	Revoked bool
	// RevokeErr is why deleting the pass failed, when it was asked for and failed.
	RevokeErr error
	// Missed is set instead of Method when a new hire's first-morning pass ended, revealed,
	// without any strong method registered: they still cannot sign in without a password.
	Missed bool
}

// WatchInterval is how often revealed passes are watched; 0 when watching is off.
func (s *Service) WatchInterval() time.Duration {
	return offOrDefault(s.cfg.WatchInterval, DefaultWatchInterval)
}

// TakeWatchTurn reports whether this replica should watch now: one replica an interval, so
// Graph is asked about each person once per TAP_WATCH_INTERVAL however many replicas run.
func (s *Service) TakeWatchTurn(ctx context.Context) (bool, error) {
	if s.WatchInterval() == 0 {
		return false, nil
	}
	return s.store.Claim(ctx, "watch-turn", s.WatchInterval())
}

// startWatching puts a just revealed request in the watch index.
func (s *Service) startWatching(ctx context.Context, r *Request) {
	if s.WatchInterval() == 0 {
		return
	}
	if err := s.store.AddWatch(ctx, r.ID); err != nil {
		s.log.WarnContext(ctx, "could not start watching for the person's new sign-in methods", "request_id", r.ID, "err", err)
	}
}

// issuedPassStart is when the pass began to work, on Entra ID's clock like the methods' creation
// times: as Entra recorded it, or else its end less the lifetime asked for.
func issuedPassStart(r *Request) time.Time {
	if !r.PassStartsAt.IsZero() {
		return r.PassStartsAt
	}
	return r.PassExpiresAt.Add(-r.Lifetime)
}

// baseline is the IDs of the strong methods that count as already there: those registered
// before the pass started, and those of unknown age.
func baseline(methods []AuthMethod, start time.Time) []string {
	ids := []string{}
	for _, m := range methods {
		if m.Kind.Strong() && (m.CreatedAt.IsZero() || m.CreatedAt.Before(start)) {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// newMethod returns the first strong method not in known that was not registered before the
// pass started, or nil.
func newMethod(methods []AuthMethod, known []string, start time.Time) *AuthMethod {
	for _, m := range methods {
		if m.Kind.Strong() && !slices.Contains(known, m.ID) && (m.CreatedAt.IsZero() || !m.CreatedAt.Before(start)) {
			return &m
		}
	}
	return nil
}

// WatchPasses looks, for every revealed pass that has not expired, whether its person has
// registered a passkey, security key, Windows Hello or Authenticator since the pass started,
// and returns each one found, once. With RevokeAfterRegistration the rest of the pass is
// deleted in Entra ID. Passes issued and not yet revealed get their baseline taken (the methods
// already there), so a method Entra ID gives no creation time is still told apart. Call it
// once per TakeWatchTurn.
func (s *Service) WatchPasses(ctx context.Context) ([]Registration, error) {
	if s.WatchInterval() == 0 {
		return nil, nil
	}
	var errs []error
	open, err := s.store.OpenRequests(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("watch: %w", err))
	}
	for _, id := range open {
		if err := s.takeBaseline(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("watch baseline %s: %w", id, err))
		}
	}
	watched, err := s.store.Watched(ctx)
	if err != nil {
		return nil, errors.Join(append(errs, fmt.Errorf("watch: %w", err))...)
	}
	var found []Registration
	for _, id := range watched {
		reg, err := s.watchOne(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("watch %s: %w", id, err))
		}
		if reg != nil {
			found = append(found, *reg)
		}
	}
	return found, errors.Join(errs...)
}

// takeBaseline records the strong methods the target had before an issued pass is revealed, and
// starts watching it.
func (s *Service) takeBaseline(ctx context.Context, id string) error {
	r, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if (r.State != Issued && r.State != Revealing) || !r.BaselineAt.IsZero() || r.PassExpiresAt.IsZero() {
		return nil
	}
	methods, err := s.dir.AuthMethods(ctx, r.Target.EntraID)
	if err != nil {
		if ErrorCode(err) != Forbidden && ErrorCode(err) != NotFound {
			return err // try again next turn
		}
		// Not allowed to look (or the account is gone): record an empty baseline, so this is
		// not asked again every turn; the watch after the reveal says what is wrong.
		s.log.WarnContext(ctx, "cannot read the person's sign-in methods", "request_id", id, "err", err)
		methods = nil
	}
	base := baseline(methods, issuedPassStart(r))
	now := s.now()
	if _, err := s.store.Update(ctx, id, func(cur *Request) error {
		if !cur.BaselineAt.IsZero() {
			return ErrConflict
		}
		cur.Baseline, cur.BaselineAt = base, now
		return nil
	}); err != nil && !errors.Is(err, ErrConflict) {
		return err
	}
	return s.store.AddWatch(ctx, id)
}

// watchOne checks one watched request: it stops watching what no longer needs it, and returns
// the registration it finds.
func (s *Service) watchOne(ctx context.Context, id string) (*Registration, error) {
	r, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, s.store.RemoveWatch(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	expired := !r.PassExpiresAt.IsZero() && !now.Before(r.PassExpiresAt)
	// A new hire's pass gets one last look when it ends, so a pass that did not do its job is
	// told to the requester.
	lastLook := expired && r.Onboarding != "" && r.MissedAt.IsZero()
	switch {
	case r.State == Issued || r.State == Revealing:
		return nil, nil // waits for its reveal
	case r.State != Revealed || !r.RegisteredAt.IsZero() || r.PassExpiresAt.IsZero() || expired && !lastLook:
		return nil, s.store.RemoveWatch(ctx, id) // ended, revoked, registered or expired
	}
	methods, err := s.dir.AuthMethods(ctx, r.Target.EntraID)
	if err != nil {
		if code := ErrorCode(err); code == Forbidden || code == NotFound || code == Invalid {
			s.log.WarnContext(ctx, "stopped watching for the person's new sign-in methods: "+UserMessage(err)+
				" Grant the app UserAuthenticationMethod.Read.All, or set TAP_WATCH_INTERVAL=off.",
				"request_id", id, "target", r.Target.UPN, "err", err)
			return nil, s.store.RemoveWatch(ctx, id)
		}
		return nil, err // try again next turn
	}
	start := issuedPassStart(r)
	known := r.Baseline
	if r.BaselineAt.IsZero() {
		known = baseline(methods, start)
	}
	m := newMethod(methods, known, start)
	if m == nil && lastLook {
		return s.missedRegistration(ctx, r)
	}
	if m == nil {
		if r.BaselineAt.IsZero() {
			// Revealed before a baseline was taken: what is there now, of unknown age, is old.
			_, err := s.store.Update(ctx, id, func(cur *Request) error {
				if cur.BaselineAt.IsZero() {
					cur.Baseline, cur.BaselineAt = known, now
				}
				return nil
			})
			return nil, err
		}
		return nil, nil
	}
	what := m.Describe()
	registered, err := s.store.Update(ctx, id, func(cur *Request) error {
		if cur.State != Revealed || !cur.RegisteredAt.IsZero() {
			return ErrConflict
		}
		cur.Registered, cur.RegisteredAt = what, now
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return nil, nil // revoked or seen meanwhile
	}
	if err != nil {
		return nil, err
	}
	s.record(ctx, EventRegistered, registered, "", "registered "+what)
	reg := &Registration{Request: registered, Method: *m}
	if s.cfg.RevokeAfterRegistration {
		revoked, err := s.revokeRegistered(ctx, registered)
		if err != nil {
			s.log.ErrorContext(ctx, "could not delete the rest of a pass after the person registered a sign-in method; revoke it by hand",
				"request_id", id, "target", r.Target.UPN, "err", err)
			reg.RevokeErr = err
		} else {
			reg.Request, reg.Revoked = revoked, revoked.State == Revoked
		}
	}
	if err := s.store.RemoveWatch(ctx, id); err != nil {
		s.log.WarnContext(ctx, "stop watching", "request_id", id, "err", err)
	}
	return reg, nil
}

// missedRegistration records, once, that a new hire's revealed pass ended with no strong method
// registered, and stops watching it.
func (s *Service) missedRegistration(ctx context.Context, r *Request) (*Registration, error) {
	now := s.now()
	missed, err := s.store.Update(ctx, r.ID, func(cur *Request) error {
		if !cur.MissedAt.IsZero() || !cur.RegisteredAt.IsZero() {
			return ErrConflict
		}
		cur.MissedAt = now
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return nil, s.store.RemoveWatch(ctx, r.ID) // told already
	}
	if err != nil {
		return nil, err
	}
	if err := s.store.RemoveWatch(ctx, r.ID); err != nil {
		s.log.WarnContext(ctx, "stop watching", "request_id", r.ID, "err", err)
	}
	return &Registration{Request: missed, Missed: true}, nil
}

// MissedNotTold undoes missedRegistration's mark when the requester could not be told, so a later
// watch turn tells them: the notice is not lost to a Slack outage.
func (s *Service) MissedNotTold(ctx context.Context, r *Request) {
	if _, err := s.store.Update(ctx, r.ID, func(cur *Request) error {
		cur.MissedAt = time.Time{}
		return nil
	}); err != nil {
		s.log.WarnContext(ctx, "a missed registration that could not be told is not retried", "request_id", r.ID, "err", err)
		return
	}
	if err := s.store.AddWatch(ctx, r.ID); err != nil {
		s.log.WarnContext(ctx, "a missed registration that could not be told is not retried", "request_id", r.ID, "err", err)
	}
}

// revokeRegistered deletes what is left of a pass whose person registered a strong method
// (TAP_REVOKE_AFTER_REGISTRATION): the pass did its job and should not stay usable.
func (s *Service) revokeRegistered(ctx context.Context, r *Request) (*Request, error) {
	if err := s.dir.DeletePass(ctx, r.Target.EntraID, r.PassID); err != nil {
		return r, err
	}
	now := s.now()
	revoked, err := s.store.Update(ctx, r.ID, func(cur *Request) error {
		if cur.State != Revealed {
			return ErrConflict
		}
		cur.State, cur.RevokedBy, cur.RevokedAt = Revoked, "", now
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return s.Get(ctx, r.ID) // revoked by someone meanwhile
	}
	if err != nil {
		return r, storeError(err)
	}
	s.record(ctx, EventRevoked, revoked, "", "the person registered "+r.Registered+"; TAP_REVOKE_AFTER_REGISTRATION deleted the rest of the pass")
	return revoked, nil
}
