package graph_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/graph"
	"github.com/tapbot/tapbot/internal/graphfake"
)

// TestPassEvents: through the real SDK, every page of the audit log is read with a filter Graph
// accepts (the fake refuses others as violations), and each pass created or deleted since the
// given time comes back once, oldest first, whoever made it: tapbot itself (its app ID), an
// admin in the portal, or another app whose record names its properties differently. Records
// about other methods and records before since are left out.
func TestPassEvents(t *testing.T) {
	e := newEnvWith(t, graphfake.Options{AuditPageSize: 2, AuditRequests: -1})
	obs := &observer{}
	c := e.clientWith(graph.Options{Timeout: 10 * time.Second, Observe: obs.observe})
	ctx := context.Background()
	since := e.clock.Now()

	e.fake.AddAuditRecord(graphfake.AuditRecord{At: since.Add(-time.Minute), Activity: graphfake.ActivityRegistered,
		Service: graphfake.ServiceAuthMethods, ResultReason: graphfake.ReasonTAPCreated, TargetID: e.pat.ID})
	e.clock.Advance(time.Second)
	own := mustCreate(t, e, c, e.alice.ID, time.Hour, true)
	e.clock.Advance(time.Second)
	if err := e.note(c.DeletePass(ctx, e.alice.ID, own.ID)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	admin := graphfake.AuditInitiator{UserID: "4f1c0b2e-0000-4000-8000-00000000ad01", UPN: "admin@contoso.com", UserName: "Ann Admin"}
	portal, _ := e.fake.CreatePassOutside(graphfake.OutsidePass{UserID: e.bob.ID, By: admin, LifetimeMinutes: 120})
	e.clock.Advance(time.Second)
	// Another app's record: bare property names, a one-element array, US-format times.
	msp := graphfake.AuditInitiator{AppID: "7d5e2f10-0000-4000-8000-0000000000a9", AppName: "MSP Onboarding", ServicePrincipalID: "sp-msp"}
	mspAt := e.clock.Now()
	e.fake.AddAuditRecord(graphfake.AuditRecord{ID: "msp-1", At: mspAt, Activity: graphfake.ActivityRegistered,
		Service: graphfake.ServiceAuthMethods, ResultReason: "Admin registered Temporary Access Pass method for user",
		By: msp, TargetID: e.pat.ID, TargetUPN: e.pat.UPN, Modified: []graphfake.ModifiedProperty{
			{Name: "MethodId", NewValue: `["8a0c0000-0000-4000-8000-0000000000f1"]`},
			{Name: "StartDateTime", NewValue: `"12/2/2026 10:00:00 AM"`},
			{Name: "EndDateTime", NewValue: `"12/2/2026 11:00:00 AM"`},
			{Name: "AccessPassUsage", NewValue: `"MultipleUse"`},
		}})
	// The same activity for another method is not a pass.
	e.fake.AddAuditRecord(graphfake.AuditRecord{Activity: graphfake.ActivityRegistered, Service: graphfake.ServiceAuthMethods,
		ResultReason: "Admin registered phone method for user", By: admin, TargetID: e.bob.ID})

	// Records Graph's filter leaves out: another service, another activity. Were they read,
	// there would be more pages than the three counted below.
	for range 3 {
		e.fake.AddAuditRecord(graphfake.AuditRecord{Activity: graphfake.ActivityRegistered, Service: "Core Directory",
			ResultReason: "temporary access pass mentioned", TargetID: e.bob.ID})
		e.fake.AddAuditRecord(graphfake.AuditRecord{Activity: "Admin updated security info", Service: graphfake.ServiceAuthMethods,
			ResultReason: "Admin updated temporary access pass method for user", TargetID: e.bob.ID})
	}

	got, err := c.PassEvents(ctx, since)
	if e.note(err) != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, ev := range got {
		lines = append(lines, string(ev.Change)+" "+ev.UserUPN+" by "+ev.By.AppID+ev.By.UPN)
	}
	want := []string{
		"created alice@contoso.com by " + e.fake.ClientID(),
		"deleted alice@contoso.com by " + e.fake.ClientID(),
		"created " + e.bob.UPN + " by admin@contoso.com",
		"created " + e.pat.UPN + " by " + msp.AppID,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	created, deleted, byAdmin, byApp := got[0], got[1], got[2], got[3]
	if created.PassID != own.ID || deleted.PassID != own.ID || created.Usage != approvals.UsageOnce ||
		!created.StartsAt.Equal(own.StartsAt.Truncate(100*time.Nanosecond)) || !created.EndsAt.Equal(created.StartsAt.Add(time.Hour)) ||
		created.UserID != e.alice.ID || created.By.ServicePrincipalID != e.fake.ServicePrincipalID() || !created.By.IsApp() {
		t.Errorf("tapbot's own pass: %+v (pass %s)", created, own.ID)
	}
	if byAdmin.PassID != portal.ID || byAdmin.By.IsApp() || byAdmin.By.UserID != admin.UserID || byAdmin.By.DisplayName != "Ann Admin" ||
		byAdmin.Usage != approvals.UsageMulti || !byAdmin.EndsAt.Equal(byAdmin.StartsAt.Add(2*time.Hour)) || byAdmin.RecordID == "" {
		t.Errorf("portal pass: %+v (pass %s)", byAdmin, portal.ID)
	}
	if byApp.RecordID != "msp-1" || byApp.PassID != "8a0c0000-0000-4000-8000-0000000000f1" || byApp.Usage != approvals.UsageMulti ||
		byApp.StartsAt != time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) || byApp.EndsAt != time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC) ||
		byApp.By.DisplayName != "MSP Onboarding" || byApp.By.ServicePrincipalID != "sp-msp" || !byApp.At.Equal(mspAt.Truncate(100*time.Nanosecond)) {
		t.Errorf("other app's pass: %+v", byApp)
	}
	// Five matching records, two a page: three pages, each one call.
	var reads []string
	for _, o := range obs.take() {
		if strings.HasPrefix(o, "list_audits") {
			reads = append(reads, o)
		}
	}
	if strings.Join(reads, ", ") != "list_audits 200, list_audits 200, list_audits 200" {
		t.Errorf("reads: %v", reads)
	}
}

// TestPassEventsWaitsOutThrottling: a 429 from the reports throttle is waited out as Retry-After
// says (through the SDK's retry handler) and the read completes; when the wait would outlast the
// caller's context, the answer is Unavailable with the throttling sentence.
func TestPassEventsWaitsOutThrottling(t *testing.T) {
	e := newEnvWith(t, graphfake.Options{AuditPageSize: 1})
	obs := &observer{}
	c := e.clientWith(graph.Options{Timeout: 10 * time.Second, Observe: obs.observe})
	since := e.clock.Now().Add(-time.Minute)
	for _, u := range []graphfake.User{e.alice, e.bob} {
		e.fake.CreatePassOutside(graphfake.OutsidePass{UserID: u.ID, By: graphfake.AuditInitiator{UserID: "a", UPN: "admin@contoso.com"}})
	}
	e.fake.SetAuditThrottle(1, time.Second)
	got, err := c.PassEvents(context.Background(), since)
	if e.note(err) != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d events, want 2", len(got))
	}
	seen := strings.Join(obs.take(), ", ")
	if !strings.Contains(seen, "list_audits 429, list_audits 200") || strings.Count(seen, "list_audits 200") != 2 {
		t.Errorf("attempts %s: want a 429 retried after Retry-After", seen)
	}

	e.fake.SetAuditThrottle(1, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.PassEvents(ctx, since)
	ae := wantCode(t, e.note(err), approvals.Unavailable)
	if !strings.Contains(ae.Message, "throttling") {
		t.Errorf("message %q does not say Graph is throttling", ae.Message)
	}
}

// TestPassEventsForbidden: without AuditLog.Read.All (or Directory.Read.All) Graph answers 403,
// and both PassEvents and doctor's CheckAuditLog say Forbidden in a sentence naming the
// permission and the setting that turns the watcher off.
func TestPassEventsForbidden(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.note(e.client(10 * time.Second).CheckAuditLog(ctx)); err != nil {
		t.Fatalf("with the default permissions: %v", err)
	}
	e.fake.SetRoles(slicesWithout(graphfake.DefaultRoles, graph.AuditLogPermission)...)
	c := e.freshClient() // a token with the new roles
	_, err := c.PassEvents(ctx, e.clock.Now().Add(-time.Hour))
	for _, err := range []error{err, c.CheckAuditLog(ctx)} {
		ae := wantCode(t, e.note(err), approvals.Forbidden)
		if !strings.Contains(ae.Message, "AuditLog.Read.All") || !strings.Contains(ae.Message, "TAP_TENANT_WATCH_INTERVAL=off") {
			t.Errorf("message %q", ae.Message)
		}
	}
	e.fake.SetRoles("Directory.Read.All")
	if err := e.note(e.freshClient().CheckAuditLog(ctx)); err != nil {
		t.Errorf("with Directory.Read.All: %v", err)
	}
}

// freshClient is a client with its own credential, so its first call gets a new token carrying
// the roles the fake grants now (a credential caches its token).
func (e *env) freshClient() *graph.Client {
	e.t.Helper()
	cred, err := graph.NewCredential(e.fake.Transport())
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := graph.New(cred, graph.Options{BaseURL: e.fake.GraphURL(), Transport: e.fake.Transport(), Timeout: 10 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func slicesWithout(in []string, drop string) []string {
	var out []string
	for _, s := range in {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

// TestPassEventsOutage: Graph failing, after the SDK's retries, is Unavailable, so the watcher
// tries again at its next turn rather than treating the log as empty.
func TestPassEventsOutage(t *testing.T) {
	tests := []struct {
		name   string
		status int
		times  int
	}{
		{"internal error", http.StatusInternalServerError, 1},
		{"unavailable past the retries", http.StatusServiceUnavailable, 4},
		{"gateway timeout past the retries", http.StatusGatewayTimeout, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvWith(t, graphfake.Options{AuditRequests: -1})
			c := e.client(10 * time.Second)
			e.fake.FailNext(graphfake.OpListAudits, tt.status, tt.times, "0")
			events, err := c.PassEvents(context.Background(), e.clock.Now().Add(-time.Hour))
			wantCode(t, e.note(err), approvals.Unavailable)
			if events != nil {
				t.Errorf("events %v with an error", events)
			}
		})
	}
}

// TestAppID: the app ID tapbot signs in as comes from its token, and it is the appId the audit
// log names for the passes tapbot makes, so the watcher can tell them apart without
// AZURE_CLIENT_ID (a system-assigned managed identity has none).
func TestAppID(t *testing.T) {
	e := newEnvWith(t, graphfake.Options{AuditRequests: -1})
	c := e.client(10 * time.Second)
	ctx := context.Background()
	id, err := c.AppID(ctx)
	if e.note(err) != nil {
		t.Fatal(err)
	}
	if id != e.fake.ClientID() {
		t.Fatalf("AppID = %q, want the fake's client ID %q", id, e.fake.ClientID())
	}
	mustCreate(t, e, c, e.alice.ID, time.Hour, true)
	events, err := c.PassEvents(ctx, e.clock.Now().Add(-time.Minute))
	if e.note(err) != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].By.AppID != id {
		t.Errorf("the audit log names %+v, AppID says %s", events, id)
	}
}
