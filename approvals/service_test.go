package approvals_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// fakeDirectory is a hand-written Directory whose behaviour each test sets through function fields.
type fakeDirectory struct {
	mu       sync.Mutex
	created  int
	policy   approvals.PassPolicy
	users    map[string]approvals.DirectoryUser
	active   bool
	createFn func(userID string, lifetime time.Duration, once bool) (approvals.Pass, error)
	listFn   func(userID string) ([]approvals.PassInfo, error)
	deleteFn func(userID, passID string) error // nil: every delete succeeds
	deleted  []string
	starts   []time.Time // the start asked of each create; zero for at once
	listed   int         // ListPasses calls
	// createBy and listBy are the deadlines the last CreatePassStarting and ListPasses calls
	// were given; zero when their context had none.
	createBy, listBy time.Time

	managers   map[string]approvals.DirectoryUser
	privileges map[string]approvals.Privileges
	// methods are users' sign-in methods, methodsErr what listing them answers instead.
	methods    map[string][]approvals.AuthMethod
	methodsErr error
}

func (d *fakeDirectory) FindUser(_ context.Context, q string) (approvals.DirectoryUser, error) {
	if u, ok := d.users[q]; ok {
		return u, nil
	}
	return approvals.DirectoryUser{}, approvals.Errorf(approvals.NotFound, "No Entra ID account found for %s.", q)
}
func (d *fakeDirectory) HasActivePass(context.Context, string) (bool, error) { return d.active, nil }
func (d *fakeDirectory) PassPolicy(context.Context) (approvals.PassPolicy, error) {
	return d.policy, nil
}
func (d *fakeDirectory) ListPasses(ctx context.Context, userID string) ([]approvals.PassInfo, error) {
	d.mu.Lock()
	d.listed++
	d.listBy, _ = ctx.Deadline()
	list := d.listFn
	d.mu.Unlock()
	if list != nil {
		return list(userID) // outside the lock, so a test can make it slow
	}
	return nil, nil
}
func (d *fakeDirectory) DeletePass(_ context.Context, userID, passID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deleteFn != nil {
		if err := d.deleteFn(userID, passID); err != nil {
			return err
		}
	}
	d.deleted = append(d.deleted, passID)
	return nil
}
func (d *fakeDirectory) Manager(_ context.Context, userID string) (approvals.DirectoryUser, error) {
	if m, ok := d.managers[userID]; ok {
		return m, nil
	}
	return approvals.DirectoryUser{}, approvals.Errorf(approvals.NotFound, "no manager")
}
func (d *fakeDirectory) Privileges(_ context.Context, userID string, groups []string) (approvals.Privileges, error) {
	return d.privileges[userID], nil
}
func (d *fakeDirectory) AuthMethods(_ context.Context, userID string) ([]approvals.AuthMethod, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.methodsErr != nil {
		return nil, d.methodsErr
	}
	return append([]approvals.AuthMethod(nil), d.methods[userID]...), nil
}
func (d *fakeDirectory) CreatePassStarting(ctx context.Context, id string, start time.Time, l time.Duration, once bool) (approvals.Pass, error) {
	d.mu.Lock()
	d.created++
	d.createBy, _ = ctx.Deadline()
	d.starts = append(d.starts, start)
	d.mu.Unlock()
	p, err := d.createFn(id, l, once)
	if err == nil && !start.IsZero() {
		p.StartsAt = start
	}
	return p, err
}

type fakePeople struct {
	emails map[string]string
	// unlisted are users whose profile shows an email that users.lookupByEmail does not find.
	unlisted map[string]string
	groups   map[string][]string
}

func (p fakePeople) Email(_ context.Context, id string) (string, error) {
	if e, ok := p.emails[id]; ok {
		return e, nil
	}
	if e, ok := p.unlisted[id]; ok {
		return e, nil
	}
	return "", approvals.Errorf(approvals.NotFound, "no email for %s", id)
}
func (p fakePeople) FindByEmail(_ context.Context, email string) (string, error) {
	for id, e := range p.emails {
		if e == email {
			return id, nil
		}
	}
	return "", approvals.ErrNotFound
}
func (p fakePeople) GroupMembers(_ context.Context, g string) ([]string, error) {
	return p.groups[g], nil
}

type harness struct {
	svc    *approvals.Service
	dir    *fakeDirectory
	store  *approvals.MemoryStore
	people fakePeople
	sealer *approvals.Sealer
	now    time.Time
	mu     sync.Mutex
}

func (h *harness) clock() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now }
func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

const passCode = "Qz8!x2Lk"

func newHarness(t *testing.T, cfg approvals.Config) *harness {
	t.Helper()
	h := &harness{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	h.dir = &fakeDirectory{
		policy: approvals.PassPolicy{Enabled: true, MinLifetime: time.Hour, MaxLifetime: 8 * time.Hour, DefaultLifetime: time.Hour},
		users: map[string]approvals.DirectoryUser{
			"ada@example.com":  {ID: "entra-ada", UPN: "ada@example.com", DisplayName: "Ada"},
			"ext@example.com":  {ID: "entra-ext", UPN: "ext@example.com", DisplayName: "Contractor"},
			"boss@example.com": {ID: "entra-boss", UPN: "boss@example.com"},
		},
	}
	h.dir.createFn = func(_ string, l time.Duration, once bool) (approvals.Pass, error) {
		return approvals.Pass{ID: "pass-" + approvals.NewID(), Code: passCode, StartsAt: h.clock(), Lifetime: l, UsableOnce: once}, nil
	}
	people := fakePeople{
		emails:   map[string]string{"UADA": "ada@example.com", "UBOSS": "boss@example.com", "UAPPR": "appr@example.com"},
		unlisted: map[string]string{"UEXT": "EXT@example.com"},
		groups:   map[string][]string{"SAPPROVERS": {"UGROUPAPPR", "UEXT"}},
	}
	if cfg.Approvers == nil {
		cfg.Approvers = []string{"UAPPR", "SAPPROVERS", "UBOSS"}
	}
	h.store = approvals.NewMemoryStore(h.clock)
	h.people, h.sealer = people, approvals.NewRandomSealer()
	h.svc = approvals.NewService(cfg, h.store, h.dir, people, h.sealer, approvals.WithClock(h.clock))
	return h
}

func (h *harness) submit(t *testing.T) *approvals.Request {
	t.Helper()
	r, err := h.svc.Submit(context.Background(), approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "lost phone", UsableOnce: true})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return r
}

func TestSubmitRefusesBadDrafts(t *testing.T) {
	tests := []struct {
		name   string
		cfg    approvals.Config
		policy *approvals.PassPolicy
		draft  approvals.Draft
		code   approvals.Code
		msg    string
	}{
		{name: "no reason", draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "  "},
			code: approvals.Invalid, msg: "reason is required"},
		{name: "over max lifetime", draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "x", Lifetime: 9 * time.Hour},
			code: approvals.Invalid, msg: "at most 8h"},
		{name: "under tenant minimum", draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "x", Lifetime: 30 * time.Minute},
			code: approvals.Invalid, msg: "from 1h to 8h"},
		{name: "policy disabled", policy: &approvals.PassPolicy{Enabled: false},
			draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "x"}, code: approvals.Invalid, msg: "turned off"},
		{name: "tenant one-time only", policy: &approvals.PassPolicy{Enabled: true, OneTimeOnly: true},
			draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "x"}, code: approvals.Invalid, msg: "only one-time"},
		{name: "requester not allowed", cfg: approvals.Config{Requesters: []string{"UADA"}},
			draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "x", UsableOnce: true}, code: approvals.Forbidden, msg: "not allowed to request"},
		{name: "target without slack email", draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UNOMAIL", Reason: "x", UsableOnce: true},
			code: approvals.NotFound, msg: "no email"},
		{name: "target not in entra", draft: approvals.Draft{Requester: "UBOSS", TargetEmail: "ghost@example.com", Reason: "x", UsableOnce: true},
			code: approvals.NotFound, msg: "No Entra ID account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			if tt.policy != nil {
				h.dir.policy = *tt.policy
			}
			r, err := h.svc.Submit(context.Background(), tt.draft)
			if err == nil {
				t.Fatalf("Submit accepted %+v: %+v", tt.draft, r)
			}
			if approvals.ErrorCode(err) != tt.code || !strings.Contains(approvals.UserMessage(err), tt.msg) {
				t.Fatalf("Submit error = %q (%s), want code %s containing %q", approvals.UserMessage(err), approvals.ErrorCode(err), tt.code, tt.msg)
			}
		})
	}
}

func TestSubmitResolvesTargets(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	if r.State != approvals.Pending || r.Target.EntraID != "entra-ada" || r.Recipient != "UADA" || r.Lifetime != time.Hour {
		t.Fatalf("request = %+v", r)
	}
	ext, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetEmail: "ext@example.com", Reason: "contractor", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	if !ext.RecipientIsRequester() || ext.Recipient != "UBOSS" {
		t.Fatalf("target without Slack: recipient = %q, want the requester", ext.Recipient)
	}
	if _, err := h.svc.Deny(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	h.dir.active = true
	again := h.submit(t)
	if !again.ReplacesActivePass {
		t.Fatal("an active pass in Entra should be flagged on the request")
	}
}

func TestApproveRules(t *testing.T) {
	tests := []struct {
		name     string
		approver string
		code     approvals.Code
		msg      string
	}{
		{"requester approves own request", "UBOSS", approvals.Forbidden, "someone else"},
		{"target approves own pass", "UADA", approvals.Forbidden, "This pass is for you"},
		{"not an approver", "URANDOM", approvals.Forbidden, "may not approve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{Approvers: []string{"UBOSS", "UADA", "UAPPR"}})
			r := h.submit(t)
			_, err := h.svc.Approve(context.Background(), r.ID, tt.approver, approvals.MessageRef{})
			if approvals.ErrorCode(err) != tt.code || !strings.Contains(approvals.UserMessage(err), tt.msg) {
				t.Fatalf("Approve by %s = %v, want %s containing %q", tt.approver, err, tt.code, tt.msg)
			}
			got, _ := h.svc.Get(context.Background(), r.ID)
			if got.State != approvals.Pending || h.dir.created != 0 {
				t.Fatalf("refused approval changed things: state %s, %d passes created", got.State, h.dir.created)
			}
		})
	}
}

func TestApproveThroughGroupThenRevealOnce(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	issued, err := h.svc.Approve(ctx, r.ID, "UGROUPAPPR", approvals.MessageRef{})
	if err != nil {
		t.Fatalf("Approve by a user group member: %v", err)
	}
	if issued.State != approvals.Issued || issued.DecidedBy != "UGROUPAPPR" || !issued.PassExpiresAt.Equal(h.clock().Add(time.Hour)) {
		t.Fatalf("after approval: %+v", issued)
	}
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("second approval = %v, want a conflict", err)
	}
	if _, _, err := h.svc.Reveal(ctx, r.ID, "UBOSS", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("reveal by someone else = %v, want forbidden", err)
	}
	claimed, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if err != nil || code != passCode || claimed.State != approvals.Revealing {
		t.Fatalf("Reveal = %q, %v, state %s", code, err, claimed.State)
	}
	if _, _, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); !errors.Is(err, approvals.ErrRevealInProgress) {
		t.Fatalf("a click while the pass is on its way = %v, want ErrRevealInProgress", err)
	}
	revealed, err := h.svc.ConfirmReveal(ctx, r.ID)
	if err != nil || revealed.State != approvals.Revealed || revealed.RevealedAt.IsZero() {
		t.Fatalf("ConfirmReveal = %+v, %v", revealed, err)
	}
	_, code, err = h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if code != "" || !errors.Is(err, approvals.ErrAlreadyRevealed) {
		t.Fatalf("second reveal = %q, %v; want no pass and ErrAlreadyRevealed", code, err)
	}
	if h.dir.created != 1 {
		t.Fatalf("%d passes created, want 1", h.dir.created)
	}
}

func TestConcurrentRevealsShowThePassOnce(t *testing.T) {
	h := newHarness(t, approvals.Config{RatePerRequester: 100})
	ctx := context.Background()
	for round := range 20 {
		r := h.submit(t)
		if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var seen int
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				_, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
				if err == nil && code == passCode {
					mu.Lock()
					seen++
					mu.Unlock()
					if _, err := h.svc.ConfirmReveal(ctx, r.ID); err != nil {
						t.Errorf("ConfirmReveal: %v", err)
					}
				} else if !errors.Is(err, approvals.ErrAlreadyRevealed) && !errors.Is(err, approvals.ErrRevealInProgress) {
					t.Errorf("Reveal: %q, %v", code, err)
				}
			})
		}
		wg.Wait()
		if seen != 1 {
			t.Fatalf("round %d: the pass was shown %d times, want once", round, seen)
		}
	}
}

func TestDenyNeverCreatesAPass(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	r := h.submit(t)
	denied, err := h.svc.Deny(context.Background(), r.ID, "UAPPR", approvals.MessageRef{})
	if err != nil || denied.State != approvals.Denied || denied.DecidedBy != "UAPPR" {
		t.Fatalf("Deny = %+v, %v", denied, err)
	}
	if _, err := h.svc.Approve(context.Background(), r.ID, "UAPPR", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("approve after deny = %v, want conflict", err)
	}
	if h.dir.created != 0 {
		t.Fatal("a denied request created a pass")
	}
}

func TestExpiredRequestCannotBeApproved(t *testing.T) {
	h := newHarness(t, approvals.Config{RequestTTL: time.Hour})
	r := h.submit(t)
	h.advance(time.Hour)
	got, err := h.svc.Approve(context.Background(), r.ID, "UAPPR", approvals.MessageRef{})
	if !errors.Is(err, approvals.ErrExpiredNow) || got.State != approvals.Expired || !strings.Contains(approvals.UserMessage(err), "expired") {
		t.Fatalf("Approve after TTL = %v (state %v), want expired", err, got.State)
	}
	if _, err := h.svc.Approve(context.Background(), r.ID, "UAPPR", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Conflict || errors.Is(err, approvals.ErrExpiredNow) {
		t.Fatalf("second click = %v, want a plain conflict", err)
	}
	if h.dir.created != 0 {
		t.Fatal("an expired request created a pass")
	}
}

func TestDirectoryFailureEndsRequestFailed(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	h.dir.createFn = func(string, time.Duration, bool) (approvals.Pass, error) {
		return approvals.Pass{}, approvals.Errorf(approvals.Forbidden, "Entra ID does not allow tapbot to create a pass for this user.")
	}
	r := h.submit(t)
	failed, err := h.svc.Approve(context.Background(), r.ID, "UAPPR", approvals.MessageRef{})
	if !errors.Is(err, approvals.ErrIssueFailed) || approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("Approve = %v, want ErrIssueFailed with forbidden", err)
	}
	if failed.State != approvals.Failed || !strings.Contains(failed.Failure, "does not allow") {
		t.Fatalf("request = %s %q, want failed with the reason", failed.State, failed.Failure)
	}
	if _, _, err := h.svc.Reveal(context.Background(), r.ID, "UADA", approvals.MessageRef{}); err == nil {
		t.Fatal("a failed request revealed something")
	}
}

// TestApproveBoundsItsWaitOnTheDirectory: from the click, the create gets two thirds of
// IssueTimeout, retries included, and the check after a create that timed out gets the rest, so
// the approver hears of a hanging directory within IssueTimeout. The deadlines are read from the
// contexts the directory is given, so no clock is raced.
func TestApproveBoundsItsWaitOnTheDirectory(t *testing.T) {
	const budget = 9 * time.Second
	for _, tt := range []struct {
		name   string
		cfg    approvals.Config
		budget time.Duration
	}{
		{"configured", approvals.Config{IssueTimeout: budget}, budget},
		{"default", approvals.Config{}, approvals.DefaultIssueTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			h.dir.createFn = func(string, time.Duration, bool) (approvals.Pass, error) {
				return approvals.Pass{}, approvals.WrapError(approvals.Unavailable, context.DeadlineExceeded, "Entra ID did not answer in time.")
			}
			r := h.submit(t)
			before := time.Now()
			failed, err := h.svc.Approve(context.Background(), r.ID, "UAPPR", approvals.MessageRef{})
			after := time.Now()
			if !errors.Is(err, approvals.ErrIssueFailed) || failed.State != approvals.Failed {
				t.Fatalf("Approve = %v (%s), want the request failed", err, failed.State)
			}
			within := func(what string, got time.Time, d time.Duration) {
				t.Helper()
				if got.IsZero() {
					t.Fatalf("%s had no deadline", what)
				}
				if got.Before(before.Add(d)) || got.After(after.Add(d)) {
					t.Errorf("%s must end %s after the click; its deadline was %s after it", what, d, got.Sub(before))
				}
			}
			within("the create", h.dir.createBy, tt.budget*2/3)
			if h.dir.listed != 1 {
				t.Fatalf("ListPasses called %d times, want the one check after a timed-out create", h.dir.listed)
			}
			within("the check for a pass the create made", h.dir.listBy, tt.budget)
		})
	}
}

func TestRevealAfterPassExpiry(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	r := h.submit(t)
	if _, err := h.svc.Approve(context.Background(), r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Hour)
	if _, code, err := h.svc.Reveal(context.Background(), r.ID, "UADA", approvals.MessageRef{}); code != "" || !strings.Contains(approvals.UserMessage(err), "expired") {
		t.Fatalf("reveal after expiry = %q, %v", code, err)
	}
}

func TestForgedIDsAreRefused(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	for _, id := range []string{"", "tap_", "../../etc", "tap_AAAAAAAAAAAAAAAA", approvals.NewID()} {
		if _, err := h.svc.Approve(context.Background(), id, "UAPPR", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.NotFound {
			t.Errorf("Approve(%q) = %v, want not found", id, err)
		}
	}
}

func TestReturnedPassCanBeRevealedAgain(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	_, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if err != nil {
		t.Fatal(err)
	}
	back, err := h.svc.ReturnPass(ctx, r.ID, code)
	if err != nil || back.State != approvals.Issued {
		t.Fatalf("ReturnPass = %+v, %v; want the request issued again", back, err)
	}
	_, again, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if err != nil || again != passCode {
		t.Fatalf("Reveal after ReturnPass = %q, %v; want the same pass", again, err)
	}
}

func TestUndecryptablePassFailsTheRequest(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	// As if TAP_ENCRYPTION_KEY changed between issue and reveal.
	if err := h.store.PutSecret(ctx, r.ID, approvals.NewRandomSealer().Seal(r.ID, []byte(passCode)), time.Hour); err != nil {
		t.Fatal(err)
	}
	got, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if code != "" || err == nil || !strings.Contains(approvals.UserMessage(err), "could not be decrypted") {
		t.Fatalf("Reveal = %q, %v", code, err)
	}
	if got.State != approvals.Failed {
		t.Fatalf("state = %s, want failed so nobody keeps clicking", got.State)
	}
}

func TestTargetWithoutSlackMatchCannotApproveOwnPass(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetEmail: "ext@example.com", Reason: "x", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Approve(ctx, r.ID, "UEXT", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("the target approved their own pass through an account Slack did not match: %v", err)
	}
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatalf("another approver: %v", err)
	}
}
