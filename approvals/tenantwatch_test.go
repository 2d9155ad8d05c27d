package approvals_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// memAuditLog is an in-memory audit log: what PassEvents returns is every record at or after
// since, as Graph's filter does; err answers instead when set.
type memAuditLog struct {
	mu      sync.Mutex
	records []approvals.TenantPassEvent
	err     error
	reads   []time.Time // the since of each read
}

func (l *memAuditLog) add(e approvals.TenantPassEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, e)
}

func (l *memAuditLog) PassEvents(_ context.Context, since time.Time) ([]approvals.TenantPassEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads = append(l.reads, since)
	if l.err != nil {
		return nil, l.err
	}
	var out []approvals.TenantPassEvent
	for _, e := range l.records {
		if !e.At.Before(since) {
			out = append(out, e)
		}
	}
	return out, nil
}

const ownApp = "11111111-2222-3333-4444-555555555555"

var portalAdmin = approvals.AuditActor{UserID: "entra-root", UPN: "root@example.com", DisplayName: "Root Admin"}

// tenantHarness is a harness whose service reads log; a second call on the same harness is a
// restart (or another replica) on the same store.
func tenantHarness(t *testing.T, h *harness, log approvals.AuditLog, cfg approvals.Config) *approvals.Service {
	t.Helper()
	if cfg.Approvers == nil {
		cfg.Approvers = []string{"UAPPR", "SAPPROVERS", "UBOSS"}
	}
	cfg.OwnAppIDs = []string{ownApp}
	return approvals.NewService(cfg, h.store, h.dir, h.people, h.sealer, approvals.WithClock(h.clock), approvals.WithAuditLog(log))
}

func created(id string, at time.Time, by approvals.AuditActor, passID string) approvals.TenantPassEvent {
	return approvals.TenantPassEvent{RecordID: id, Change: approvals.PassCreated, At: at, UserID: "entra-ada", UserUPN: "ada@example.com",
		PassID: passID, StartsAt: at, EndsAt: at.Add(time.Hour), Usage: approvals.UsageOnce, By: by}
}

func deleted(id string, at time.Time, by approvals.AuditActor, passID string) approvals.TenantPassEvent {
	e := created(id, at, by, passID)
	e.Change = approvals.PassDeleted
	return e
}

// events are the names of the trail's events, in order.
func events(t *testing.T, s *approvals.MemoryStore) []string {
	t.Helper()
	es, err := s.ReadAudit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Event)
	}
	return names
}

func count(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

func watchTenant(t *testing.T, svc *approvals.Service) approvals.TenantReport {
	t.Helper()
	rep, err := svc.WatchTenant(context.Background())
	if err != nil {
		t.Fatalf("WatchTenant: %v", err)
	}
	return rep
}

// issue makes a pass through tapbot and returns its request.
func issue(t *testing.T, h *harness, svc *approvals.Service) *approvals.Request {
	t.Helper()
	r, err := svc.Submit(context.Background(), approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "lost phone", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := svc.Approve(context.Background(), r.ID, "UAPPR", approvals.MessageRef{})
	if err != nil {
		t.Fatal(err)
	}
	return issued
}

func TestTenantWatchTellsOursFromOthers(t *testing.T) {
	tests := []struct {
		name      string
		record    func(h *harness, ours *approvals.Request) approvals.TenantPassEvent
		alerts    int
		confirmed int
	}{
		{"a pass tapbot recorded, whoever the log says made it", func(h *harness, ours *approvals.Request) approvals.TenantPassEvent {
			return created("rec-1", h.clock(), portalAdmin, ours.PassID)
		}, 0, 1},
		{"a pass tapbot's own app made", func(h *harness, _ *approvals.Request) approvals.TenantPassEvent {
			return created("rec-1", h.clock(), approvals.AuditActor{AppID: ownApp, DisplayName: "tapbot"}, "pass-unknown")
		}, 0, 0},
		{"a pass made in the portal", func(h *harness, _ *approvals.Request) approvals.TenantPassEvent {
			return created("rec-1", h.clock(), portalAdmin, "pass-portal")
		}, 1, 0},
		{"a pass another app made", func(h *harness, _ *approvals.Request) approvals.TenantPassEvent {
			return created("rec-1", h.clock(), approvals.AuditActor{AppID: "other-app", DisplayName: "MSP tool"}, "pass-msp")
		}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			log := &memAuditLog{}
			svc := tenantHarness(t, h, log, approvals.Config{})
			ours := issue(t, h, svc)
			log.add(tt.record(h, ours))
			h.advance(time.Minute)
			rep := watchTenant(t, svc)
			if len(rep.Alerts) != tt.alerts {
				t.Fatalf("%d alerts, want %d", len(rep.Alerts), tt.alerts)
			}
			trail := events(t, h.store)
			if got := count(trail, approvals.EventConfirmedInEntra); got != tt.confirmed {
				t.Fatalf("%d confirmed_in_entra, want %d: %v", got, tt.confirmed, trail)
			}
			if got := count(trail, approvals.EventExternalCreated); got != tt.alerts {
				t.Fatalf("%d external_pass_created, want %d: %v", got, tt.alerts, trail)
			}
			// Read again (the overlap returns the same record): nothing new.
			h.advance(time.Minute)
			if rep := watchTenant(t, svc); len(rep.Alerts) != 0 {
				t.Fatalf("the same record raised %d more alerts", len(rep.Alerts))
			}
			if again := events(t, h.store); len(again) != len(trail) {
				t.Fatalf("the same record was handled again: %v, then %v", trail, again)
			}
		})
	}
}

func TestTenantWatchAlertSaysWhoAndWhat(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	h.dir.privileges = map[string]approvals.Privileges{"entra-ada": {Roles: []string{"Global Administrator"}}}
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{ProtectedApprovers: []string{"USEC"}})
	log.add(created("rec-1", h.clock(), portalAdmin, "pass-portal"))
	rep := watchTenant(t, svc)
	if len(rep.Alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(rep.Alerts))
	}
	p := rep.Alerts[0]
	if !approvals.ValidID(p.ID) || p.SlackID != "UADA" || !p.Privileged.Privileged() || p.Pass.PassID != "pass-portal" ||
		p.State != approvals.ExternalAlerted || p.Pass.By.Describe() != "Root Admin (root@example.com)" {
		t.Fatalf("alert = %+v", p)
	}
}

func TestTenantWatchCatchesLateRecordsAndSurvivesRestarts(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{})
	start := h.clock()
	log.add(created("rec-1", start, portalAdmin, "pass-1"))
	if rep := watchTenant(t, svc); len(rep.Alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(rep.Alerts))
	}
	if _, err := svc.AlertPosted(context.Background(), watchTenantID(t, h), approvals.MessageRef{Channel: "CAUDIT", TS: "1.1"}); err != nil {
		t.Fatal(err)
	}
	// Ten minutes on, a record of something done before the last read arrives late.
	h.advance(10 * time.Minute)
	log.add(created("rec-2", start.Add(2*time.Minute), portalAdmin, "pass-2"))
	rep := watchTenant(t, svc)
	if len(rep.Alerts) != 1 || rep.Alerts[0].Pass.RecordID != "rec-2" {
		t.Fatalf("after a late record: %+v, want rec-2's alert", rep.Alerts)
	}
	for _, p := range rep.Alerts {
		if _, err := svc.AlertPosted(context.Background(), p.ID, approvals.MessageRef{Channel: "CAUDIT", TS: "1.2"}); err != nil {
			t.Fatal(err)
		}
	}
	// A restart: a new service on the same store neither repeats nor misses.
	restarted := tenantHarness(t, h, log, approvals.Config{})
	h.advance(5 * time.Minute)
	log.add(created("rec-3", h.clock(), portalAdmin, "pass-3"))
	rep = watchTenant(t, restarted)
	if len(rep.Alerts) != 1 || rep.Alerts[0].Pass.RecordID != "rec-3" {
		t.Fatalf("after a restart: %+v, want only rec-3's alert", rep.Alerts)
	}
	if n := count(events(t, h.store), approvals.EventExternalCreated); n != 3 {
		t.Fatalf("%d external_pass_created, want 3", n)
	}
	// Each read starts the overlap before the last one.
	if last := log.reads[len(log.reads)-1]; !last.Equal(start.Add(10*time.Minute - approvals.TenantWatchOverlap)) {
		t.Fatalf("last read since %v, want the cursor less %v", last, approvals.TenantWatchOverlap)
	}
}

// watchTenantID is the ID of the only external pass in the trail.
func watchTenantID(t *testing.T, h *harness) string {
	t.Helper()
	es, err := h.store.ReadAudit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Event == approvals.EventExternalCreated {
			return e.RequestID
		}
	}
	t.Fatal("no external_pass_created in the trail")
	return ""
}

func TestUnpostedAlertIsRaisedAgainOnlyAfterItsClaim(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{})
	other := tenantHarness(t, h, log, approvals.Config{})
	log.add(created("rec-1", h.clock(), portalAdmin, "pass-1"))
	if rep := watchTenant(t, svc); len(rep.Alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(rep.Alerts))
	}
	// Not posted yet (Slack is slow): another replica's turn leaves it to the first.
	h.advance(time.Minute)
	if rep := watchTenant(t, other); len(rep.Alerts) != 0 {
		t.Fatalf("another replica raised the alert being posted: %+v", rep.Alerts)
	}
	// The first replica died before posting: once its claim runs out the alert is raised again.
	h.advance(15 * time.Minute)
	if rep := watchTenant(t, other); len(rep.Alerts) != 1 {
		t.Fatalf("%d alerts after the claim ran out, want 1", len(rep.Alerts))
	}
	if n := count(events(t, h.store), approvals.EventExternalCreated); n != 1 {
		t.Fatalf("%d external_pass_created, want 1", n)
	}
}

func TestPassDeletedOutsideTapbotEndsItsRequest(t *testing.T) {
	tests := []struct {
		name    string
		by      approvals.AuditActor
		removed bool
	}{
		{"deleted by an admin", portalAdmin, true},
		{"deleted by tapbot itself", approvals.AuditActor{AppID: ownApp}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			log := &memAuditLog{}
			svc := tenantHarness(t, h, log, approvals.Config{})
			r := issue(t, h, svc)
			log.add(deleted("rec-del", h.clock(), tt.by, r.PassID))
			rep := watchTenant(t, svc)
			got, err := svc.Get(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.removed {
				if len(rep.Removed) != 0 || got.State != approvals.Issued {
					t.Fatalf("tapbot's own delete ended the request: %+v, state %s", rep.Removed, got.State)
				}
				return
			}
			if len(rep.Removed) != 1 || got.State != approvals.Revoked || got.RemovedInEntraBy != "Root Admin (root@example.com)" {
				t.Fatalf("removed %d, request %s by %q", len(rep.Removed), got.State, got.RemovedInEntraBy)
			}
			if _, _, err := svc.Reveal(context.Background(), r.ID, "UADA", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Conflict {
				t.Fatalf("reveal of a deleted pass = %v, want a conflict", err)
			}
			if has, _ := h.store.HasSecret(context.Background(), r.ID); has {
				t.Fatal("the sealed pass outlived its deletion")
			}
			if n := count(events(t, h.store), approvals.EventExternalDeleted); n != 1 {
				t.Fatalf("%d external_pass_deleted, want 1", n)
			}
			if rep := watchTenant(t, svc); len(rep.Removed) != 0 {
				t.Fatal("the deletion was handled twice")
			}
		})
	}
}

func TestRevokeAndAcknowledgeExternalPasses(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{ProtectedApprovers: []string{"USEC"}})
	log.add(created("rec-1", h.clock(), portalAdmin, "pass-1"))
	log.add(created("rec-2", h.clock(), portalAdmin, "pass-2"))
	rep := watchTenant(t, svc)
	if len(rep.Alerts) != 2 {
		t.Fatalf("%d alerts, want 2", len(rep.Alerts))
	}
	first, second := rep.Alerts[0], rep.Alerts[1]
	ctx := context.Background()
	if _, err := svc.RevokeExternal(ctx, first.ID, "UADA"); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("revoke by the person themselves = %v, want forbidden", err)
	}
	revoked, err := svc.RevokeExternal(ctx, first.ID, "USEC")
	if err != nil || revoked.State != approvals.ExternalRevoked || revoked.DecidedBy != "USEC" {
		t.Fatalf("RevokeExternal = %+v, %v", revoked, err)
	}
	if !slices.Equal(h.dir.deleted, []string{"pass-1"}) {
		t.Fatalf("deleted %v, want exactly pass-1", h.dir.deleted)
	}
	if _, err := svc.RevokeExternal(ctx, first.ID, "UAPPR"); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("second revoke = %v, want a conflict", err)
	}
	if _, err := svc.AcknowledgeExternal(ctx, second.ID, "UAPPR", "  "); approvals.ErrorCode(err) != approvals.Invalid {
		t.Fatalf("acknowledge without a reason = %v, want invalid", err)
	}
	if _, err := svc.AcknowledgeExternal(ctx, second.ID, "UADA", "fine"); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("acknowledge by a non-approver = %v, want forbidden", err)
	}
	acked, err := svc.AcknowledgeExternal(ctx, second.ID, "UAPPR", "onboarding by the service desk")
	if err != nil || acked.State != approvals.ExternalAcknowledged || acked.Reason != "onboarding by the service desk" {
		t.Fatalf("AcknowledgeExternal = %+v, %v", acked, err)
	}
	if _, err := svc.RevokeExternal(ctx, second.ID, "UAPPR"); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("revoke after acknowledge = %v, want a conflict", err)
	}
	trail := events(t, h.store)
	if count(trail, approvals.EventExternalRevoked) != 1 || count(trail, approvals.EventExternalAcknowledged) != 1 {
		t.Fatalf("trail %v", trail)
	}
	// Its deletion by tapbot comes back through the audit log and changes nothing.
	log.add(deleted("rec-3", h.clock(), approvals.AuditActor{AppID: ownApp}, "pass-1"))
	if rep := watchTenant(t, svc); len(rep.Deleted) != 0 {
		t.Fatalf("tapbot's own revoke read as a deletion: %+v", rep.Deleted)
	}
	// A portal deletion of the acknowledged one is noted.
	log.add(deleted("rec-4", h.clock(), portalAdmin, "pass-2"))
	if rep := watchTenant(t, svc); len(rep.Deleted) != 1 || rep.Deleted[0].DeletedBy != portalAdmin {
		t.Fatalf("portal deletion: %+v", rep.Deleted)
	}
}

func TestTenantWatchSaysOnceWhatItCouldNotCheck(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{})
	watchTenant(t, svc)
	last := h.clock()
	h.advance(9 * 24 * time.Hour)
	rep := watchTenant(t, svc)
	if rep.Gap == nil || !rep.Gap.From.Equal(last.Add(-approvals.TenantWatchOverlap)) || !rep.Gap.To.Equal(h.clock().Add(-approvals.DefaultAuditLogRetention)) {
		t.Fatalf("gap = %+v", rep.Gap)
	}
	if since := log.reads[len(log.reads)-1]; !since.Equal(rep.Gap.To) {
		t.Fatalf("read since %v, want the oldest the log keeps (%v)", since, rep.Gap.To)
	}
	h.advance(time.Minute)
	if rep := watchTenant(t, svc); rep.Gap != nil {
		t.Fatalf("gap said twice: %+v", rep.Gap)
	}
}

func TestTenantWatchWithoutPermissionSaysSoOnceAndStops(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{err: approvals.Errorf(approvals.Forbidden, "tapbot may not read the audit log (AuditLog.Read.All).")}
	svc := tenantHarness(t, h, log, approvals.Config{})
	other := tenantHarness(t, h, log, approvals.Config{})
	rep := watchTenant(t, svc)
	if rep.Off == nil || svc.TenantWatchInterval() != 0 {
		t.Fatalf("report %+v, interval %v; want it off, said", rep, svc.TenantWatchInterval())
	}
	if rep := watchTenant(t, other); rep.Off != nil {
		t.Fatal("another replica said it again")
	}
	if ok, _ := svc.TakeTenantWatchTurn(context.Background()); ok {
		t.Fatal("the watcher still takes turns")
	}
	// The rest works.
	issue(t, h, svc)
}

func TestTenantWatchOffByConfig(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{TenantWatchInterval: -1})
	log.add(created("rec-1", h.clock(), portalAdmin, "pass-1"))
	if rep := watchTenant(t, svc); len(rep.Alerts) != 0 || len(log.reads) != 0 {
		t.Fatalf("off, yet it read the log: %+v", rep)
	}
	if d := tenantHarness(t, h, log, approvals.Config{}).TenantWatchInterval(); d != approvals.DefaultTenantWatchInterval {
		t.Fatalf("default interval %v", d)
	}
}

func TestTenantPassesListsOriginAndState(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{})
	ctx := context.Background()
	ours := issue(t, h, svc)
	removed := issue(t, h, svc)
	at := h.clock()
	log.add(created("rec-ours", at, approvals.AuditActor{AppID: ownApp}, ours.PassID))
	log.add(created("rec-removed", at, approvals.AuditActor{AppID: ownApp}, removed.PassID))
	log.add(deleted("rec-removed-del", at, portalAdmin, removed.PassID))
	log.add(created("rec-revoked", at, portalAdmin, "pass-revoked"))
	log.add(created("rec-acked", at, portalAdmin, "pass-acked"))
	rep := watchTenant(t, svc)
	if len(rep.Alerts) != 2 {
		t.Fatalf("%d alerts, want 2", len(rep.Alerts))
	}
	if _, err := svc.RevokeExternal(ctx, rep.Alerts[0].ID, "UAPPR"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AcknowledgeExternal(ctx, rep.Alerts[1].ID, "UAPPR", "service desk"); err != nil {
		t.Fatal(err)
	}
	old := created("rec-old", at.Add(-2*time.Hour), portalAdmin, "pass-old")
	log.add(old)                                                   // before the watcher's first read: never alerted
	log.add(created("rec-unseen", at, portalAdmin, "pass-unseen")) // not read yet
	got, err := approvals.TenantPasses(ctx, h.store, log, []string{ownApp}, at.Add(-3*time.Hour), h.clock())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{ // pass ID -> origin, state
		ours.PassID:    {ours.ID, approvals.PassActive},
		removed.PassID: {removed.ID, approvals.PassDeletedState},
		"pass-revoked": {"Root Admin (root@example.com)", approvals.PassRevoked},
		"pass-acked":   {"Root Admin (root@example.com)", approvals.PassAcknowledged},
		"pass-old":     {"Root Admin (root@example.com)", approvals.PassUnseen},
		"pass-unseen":  {"Root Admin (root@example.com)", approvals.PassUnseen},
	}
	if len(got) != len(want) {
		t.Fatalf("%d passes, want %d: %+v", len(got), len(want), got)
	}
	for _, p := range got {
		origin := p.RequestID
		if origin == "" {
			origin = p.MadeBy
		}
		if w := want[p.PassID]; origin != w[0] || p.State != w[1] {
			t.Errorf("%s: origin %q, state %q; want %q, %q", p.PassID, origin, p.State, w[0], w[1])
		}
	}
}

// TestOwnPassReadBeforeItsRequestRecordsItIsConfirmedLater: a record of tapbot's app read in the
// moment before the request records the pass's ID is neither an alert nor lost.
func TestOwnPassReadBeforeItsRequestRecordsItIsConfirmedLater(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	log := &memAuditLog{}
	svc := tenantHarness(t, h, log, approvals.Config{})
	create := h.dir.createFn
	h.dir.createFn = func(id string, l time.Duration, once bool) (approvals.Pass, error) {
		p, err := create(id, l, once)
		p.ID = "pass-early"
		log.add(created("rec-early", h.clock(), approvals.AuditActor{AppID: ownApp}, p.ID))
		// The watcher's turn falls between the create and the request recording it.
		if rep := watchTenant(t, svc); len(rep.Alerts) != 0 {
			t.Errorf("tapbot's own pass raised an alert: %+v", rep.Alerts)
		}
		return p, err
	}
	issue(t, h, svc)
	h.advance(time.Minute)
	watchTenant(t, svc)
	watchTenant(t, svc)
	if n := count(events(t, h.store), approvals.EventConfirmedInEntra); n != 1 {
		t.Fatalf("%d confirmed_in_entra, want 1", n)
	}
}
