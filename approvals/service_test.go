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
	users    map[string]approvals.DirectoryUser // by every address that finds the user
	findErr  error                              // what FindUser answers instead, when set
	finds    []string                           // the addresses FindUser was asked for
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

// FindUser matches the address without regard to case, as Entra ID does; findErr, when set,
// answers instead (a Graph outage).
func (d *fakeDirectory) FindUser(_ context.Context, q string) (approvals.DirectoryUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finds = append(d.finds, q)
	if d.findErr != nil {
		return approvals.DirectoryUser{}, d.findErr
	}
	for addr, u := range d.users {
		if strings.EqualFold(addr, q) {
			return u, nil
		}
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
			// The approvers: four eyes compares their directory accounts.
			"appr@example.com":      {ID: "entra-appr", UPN: "appr@example.com"},
			"groupappr@example.com": {ID: "entra-groupappr", UPN: "groupappr@example.com"},
			"sec@example.com":       {ID: "entra-sec", UPN: "sec@example.com"},
			"guard@example.com":     {ID: "entra-guard", UPN: "guard@example.com"},
			"mgr@example.com":       {ID: "entra-mgr", UPN: "mgr@example.com"},
		},
	}
	h.dir.createFn = func(_ string, l time.Duration, once bool) (approvals.Pass, error) {
		return approvals.Pass{ID: "pass-" + approvals.NewID(), Code: passCode, StartsAt: h.clock(), Lifetime: l, UsableOnce: once}, nil
	}
	people := fakePeople{
		emails: map[string]string{"UADA": "ada@example.com", "UBOSS": "boss@example.com", "UAPPR": "appr@example.com",
			"UGROUPAPPR": "groupappr@example.com", "USEC": "sec@example.com", "UGUARD": "guard@example.com"},
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

// TestUnopenablePassGoesBackSealed: a replica whose keys do not open a pass (a rotation rolling
// out, a mistyped key) must not destroy it. The pass goes back exactly as sealed, the click hears
// "temporarily unavailable", and a replica with the right key shows it.
func TestUnopenablePassGoesBackSealed(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	// As if another replica, with a key this one lacks, had sealed it.
	other := approvals.NewRandomSealer()
	sealed := other.Seal(r.ID, []byte(passCode))
	if err := h.store.PutSecret(ctx, r.ID, sealed, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if code != "" || approvals.ErrorCode(err) != approvals.Unavailable || !strings.Contains(approvals.UserMessage(err), "try again in a minute") {
		t.Fatalf("Reveal = %q, %v; want temporarily unavailable", code, err)
	}
	if got.State != approvals.Issued || len(h.dir.deleted) != 0 {
		t.Fatalf("state %s, deleted %v: want the request issued and the pass live", got.State, h.dir.deleted)
	}
	peek := func(r *approvals.Request) error {
		r.State, r.Owner, r.RevealToken = approvals.Revealing, "peek", "peek"
		return nil
	}
	if _, err := h.store.Update(ctx, r.ID, peek); err != nil {
		t.Fatal(err)
	}
	back, err := h.store.TakeSecret(ctx, r.ID, "peek", "peek", time.Minute)
	if err != nil || string(back) != string(sealed) {
		t.Fatalf("the store holds %d bytes (%v); want the pass back exactly as it was sealed", len(back), err)
	}
	if err := h.store.ReturnSecret(ctx, r.ID, "peek", "peek", back, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Update(ctx, r.ID, func(r *approvals.Request) error {
		r.State, r.Owner, r.RevealToken = approvals.Issued, "", ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cfg := h.svc.Config()
	cfg.Instance = "replica-with-the-key"
	right := approvals.NewService(cfg, h.store, h.dir, h.people, other, approvals.WithClock(h.clock))
	if _, code, err := right.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); err != nil || code != passCode {
		t.Fatalf("Reveal on a replica with the key = %q, %v", code, err)
	}
}

// TestRevealWithNoSecret: a request in Revealing whose sealed pass is gone cannot show it, so the
// live pass is deleted in Entra ID and the request fails with the truth; only a pass another
// reveal took raises the "someone else may have it" alarm.
func TestRevealWithNoSecret(t *testing.T) {
	for _, tt := range []struct {
		name      string
		lose      func(ctx context.Context, s approvals.Store, id string) error
		cause     error
		msg       string
		wantAlarm bool
	}{
		{"lost by the store", func(ctx context.Context, s approvals.Store, id string) error { return s.DeleteSecret(ctx, id) },
			approvals.ErrPassLost, "nobody has seen it", false},
		{"taken by another reveal", func(ctx context.Context, s approvals.Store, id string) error {
			if _, err := s.Update(ctx, id, func(r *approvals.Request) error {
				r.State, r.Owner, r.RevealToken = approvals.Revealing, "another-replica", "another-reveal"
				return nil
			}); err != nil {
				return err
			}
			if _, err := s.TakeSecret(ctx, id, "another-replica", "another-reveal", time.Minute); err != nil {
				return err
			}
			// That reveal stopped without a word, and a sweep let the request go back to Issued.
			_, err := s.Update(ctx, id, func(r *approvals.Request) error {
				r.State, r.Owner, r.RevealToken = approvals.Issued, "", ""
				return nil
			})
			return err
		}, approvals.ErrAlreadyRevealed, "someone may have seen it", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			ctx := context.Background()
			r := h.submit(t)
			issued, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.lose(ctx, h.store, r.ID); err != nil {
				t.Fatal(err)
			}
			got, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
			if code != "" || !errors.Is(err, tt.cause) || !strings.Contains(approvals.UserMessage(err), tt.msg) ||
				!strings.Contains(approvals.UserMessage(err), "deleted in Entra ID") {
				t.Fatalf("Reveal = %q, %v; want %v saying %q", code, err, tt.cause, tt.msg)
			}
			if got.State != approvals.Failed || got.Failure == "" {
				t.Fatalf("state %s (%q), want failed with a reason", got.State, got.Failure)
			}
			if len(h.dir.deleted) != 1 || h.dir.deleted[0] != issued.PassID {
				t.Fatalf("deleted %v, want the pass %s", h.dir.deleted, issued.PassID)
			}
			events, _ := h.store.ReadAudit(ctx, time.Time{})
			alarm := false
			for _, e := range events {
				alarm = alarm || e.Event == approvals.EventRevealRefused
			}
			if alarm != tt.wantAlarm {
				t.Fatalf("reveal_refused recorded: %v, want %v", alarm, tt.wantAlarm)
			}
		})
	}
}

// flakyStore is a real embedded store with one method made to fail, for unit tests of what the
// service does when a store call fails.
type flakyStore struct {
	*approvals.MemoryStore
	takeErr   error // returned once by TakeSecret, after the take ran
	returnErr error // returned by every ReturnSecret, which does nothing
}

func (f *flakyStore) TakeSecret(ctx context.Context, id, owner, token string, hold time.Duration) ([]byte, error) {
	b, err := f.MemoryStore.TakeSecret(ctx, id, owner, token, hold)
	if err == nil && f.takeErr != nil {
		err, f.takeErr = f.takeErr, nil
	}
	return b, err
}

func (f *flakyStore) ReturnSecret(ctx context.Context, id, owner, token string, sealed []byte, ttl time.Duration) error {
	if f.returnErr != nil {
		return f.returnErr
	}
	return f.MemoryStore.ReturnSecret(ctx, id, owner, token, sealed, ttl)
}

func flakyHarness(t *testing.T, f *flakyStore) *harness {
	h := newHarness(t, approvals.Config{})
	f.MemoryStore = h.store
	h.svc = approvals.NewService(h.svc.Config(), f, h.dir, h.people, h.sealer, approvals.WithClock(h.clock))
	return h
}

// TestTakeWithUnclearOutcome: a take that ran but whose answer never arrived (a lost reply past
// the client's retries), or whose claim no replica acknowledged, shows nothing; the next click
// gets the pass, once.
func TestTakeWithUnclearOutcome(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"answer lost", errors.New("redis: connection reset")},
		{"claim not replicated", approvals.ErrNotReplicated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &flakyStore{takeErr: tt.err}
			h := flakyHarness(t, f)
			ctx := context.Background()
			r := h.submit(t)
			if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
				t.Fatal(err)
			}
			got, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
			if code != "" || approvals.ErrorCode(err) != approvals.Unavailable || got.State != approvals.Issued {
				t.Fatalf("Reveal = %q, %v, state %s; want unavailable and the request issued", code, err, got.State)
			}
			_, code, err = h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
			if err != nil || code != passCode {
				t.Fatalf("the next click = %q, %v; want the pass", code, err)
			}
			if _, err := h.svc.ConfirmReveal(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if _, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); code != "" || !errors.Is(err, approvals.ErrAlreadyRevealed) {
				t.Fatalf("a click after the reveal = %q, %v", code, err)
			}
			if len(h.dir.deleted) != 0 {
				t.Fatalf("deleted %v; nothing needed deleting", h.dir.deleted)
			}
		})
	}
}

// TestReturnPassThatCannotBeKept: a pass the chat service refused to show and the store cannot
// take back would stay live in Entra ID with nobody able to see it; it is deleted there.
func TestReturnPassThatCannotBeKept(t *testing.T) {
	f := &flakyStore{}
	h := flakyHarness(t, f)
	ctx := context.Background()
	r := h.submit(t)
	issued, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
	if err != nil {
		t.Fatal(err)
	}
	_, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if err != nil {
		t.Fatal(err)
	}
	f.returnErr = errors.New("redis: connection refused")
	failed, err := h.svc.ReturnPass(ctx, r.ID, code)
	if approvals.ErrorCode(err) != approvals.Unavailable || !strings.Contains(approvals.UserMessage(err), "deleted in Entra ID") {
		t.Fatalf("ReturnPass = %v; want unavailable, saying the pass was deleted", err)
	}
	if failed.State != approvals.Failed || len(h.dir.deleted) != 1 || h.dir.deleted[0] != issued.PassID {
		t.Fatalf("state %s, deleted %v; want failed and the pass %s deleted", failed.State, h.dir.deleted, issued.PassID)
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
