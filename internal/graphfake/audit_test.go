package graphfake_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
)

// audits reads every page of directoryAudits for query and returns the records, following
// @odata.nextLink; it fails the test on any answer but 200.
func (h *harness) audits(tok string, query url.Values) []map[string]any {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.s.GraphURL()+"/auditLogs/directoryAudits?"+query.Encode(), nil)
	var out []map[string]any
	for pages := 0; req != nil; pages++ {
		if pages > 20 {
			h.t.Fatal("nextLink never ends")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		code, _, body := h.do(req)
		if code != 200 {
			h.t.Fatalf("directoryAudits: %d %v", code, body)
		}
		for _, v := range body["value"].([]any) {
			out = append(out, v.(map[string]any))
		}
		req = nil
		if next, ok := body["@odata.nextLink"].(string); ok {
			req, _ = http.NewRequest(http.MethodGet, next, nil)
		}
	}
	return out
}

// newAuditHarness is a harness without the reports throttle, for tests about other rules that
// make more requests than it allows.
func newAuditHarness(t *testing.T, opts graphfake.Options) *harness {
	opts.AuditRequests = -1
	return newHarnessWith(t, opts)
}

func (h *harness) makePass(tok, userID string) map[string]any {
	h.t.Helper()
	code, _, created := h.graph(http.MethodPost, "/users/"+userID+"/authentication/temporaryAccessPassMethods", tok,
		[]byte(`{"lifetimeInMinutes":60,"isUsableOnce":true}`), map[string]string{"Content-Type": "application/json"})
	if code != 201 {
		h.t.Fatalf("create: %d %v", code, created)
	}
	return created
}

func modified(rec map[string]any) map[string][2]any {
	out := map[string][2]any{}
	tr := rec["targetResources"].([]any)[0].(map[string]any)
	for _, m := range tr["modifiedProperties"].([]any) {
		mp := m.(map[string]any)
		out[mp["displayName"].(string)] = [2]any{mp["oldValue"], mp["newValue"]}
	}
	return out
}

// TestAuditRecordsOfPasses: a pass created and deleted through the fake's endpoints is logged as
// Entra ID logs it (activity, service, reason, the calling app, the user, the pass in
// JSON-quoted modifiedProperties), newest first, and the code appears nowhere in the log.
func TestAuditRecordsOfPasses(t *testing.T) {
	h := newAuditHarness(t, graphfake.Options{})
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	created := h.makePass(tok, u.ID)
	h.clock.Advance(time.Minute)
	passID := created["id"].(string)
	if code, _, body := h.graph(http.MethodDelete, "/users/"+u.ID+"/authentication/temporaryAccessPassMethods/"+passID, tok, nil, nil); code != 204 {
		t.Fatalf("delete: %d %v", code, body)
	}

	recs := h.audits(tok, url.Values{})
	if len(recs) != 2 {
		t.Fatalf("%d records: %v", len(recs), recs)
	}
	raw, _ := json.Marshal(recs)
	if strings.Contains(string(raw), created["temporaryAccessPass"].(string)) {
		t.Fatal("the pass code is in the audit log")
	}
	del, add := recs[0], recs[1] // newest first, as Graph lists them
	for _, tc := range []struct {
		rec              map[string]any
		activity, reason string
		valueAt          int
	}{
		{add, graphfake.ActivityRegistered, graphfake.ReasonTAPCreated, 1},
		{del, graphfake.ActivityDeleted, graphfake.ReasonTAPDeleted, 0},
	} {
		r := tc.rec
		if r["activityDisplayName"] != tc.activity || r["resultReason"] != tc.reason ||
			r["loggedByService"] != graphfake.ServiceAuthMethods || r["category"] != graphfake.CategoryUserMgmt {
			t.Errorf("record %v", r)
		}
		app, _ := r["initiatedBy"].(map[string]any)["app"].(map[string]any)
		if app == nil || app["appId"] != h.s.ClientID() || app["servicePrincipalId"] != h.s.ServicePrincipalID() {
			t.Errorf("initiatedBy %v", r["initiatedBy"])
		}
		tr := r["targetResources"].([]any)[0].(map[string]any)
		if tr["id"] != u.ID || tr["userPrincipalName"] != u.UPN {
			t.Errorf("target %v", tr)
		}
		if got := modified(r)["TemporaryAccessPass.Id"][tc.valueAt]; got != `"`+passID+`"` {
			t.Errorf("%s: pass ID property %v", tc.activity, got)
		}
	}
	if got := modified(add)["TemporaryAccessPass.AccessPassUsage"][1]; got != `"OneTime"` {
		t.Errorf("usage %v", got)
	}
}

// TestAuditFilter: the $filter clauses Graph supports select records, joined by and/or with
// parentheses; what Graph refuses (resultReason, unquoted strings, unsupported operators) is a
// 400 in Graph's error shape and a violation.
func TestAuditFilter(t *testing.T) {
	h := newAuditHarness(t, graphfake.Options{})
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	start := h.clock.Now()
	h.makePass(tok, u.ID)                                                                                                    // registered, start
	h.s.AddAuditRecord(graphfake.AuditRecord{At: start.Add(-time.Hour), Activity: "Update user", Service: "Core Directory"}) // older
	h.clock.Advance(time.Hour)
	h.s.AddAuditRecord(graphfake.AuditRecord{Activity: graphfake.ActivityRegistered, Service: graphfake.ServiceAuthMethods,
		ResultReason: "Admin registered phone method for user"})

	ok := []struct {
		filter string
		want   int
	}{
		{"activityDateTime ge " + start.Format(time.RFC3339), 2},
		{"activityDateTime le " + start.Format(time.RFC3339), 2},
		{"loggedByService eq 'Authentication Methods'", 2},
		{"activityDisplayName eq 'Admin registered security info' and activityDateTime ge " + start.Add(time.Minute).Format(time.RFC3339Nano), 1},
		{"loggedByService eq 'Core Directory' or activityDisplayName eq 'Admin deleted security info'", 1},
		{"activityDateTime ge " + start.Format("2006-01-02") + " and (activityDisplayName eq 'Update user' or loggedByService eq 'Authentication Methods')", 3},
	}
	for _, tc := range ok {
		t.Run(tc.filter, func(t *testing.T) {
			if got := h.audits(tok, url.Values{"$filter": {tc.filter}}); len(got) != tc.want {
				t.Errorf("%d records, want %d", len(got), tc.want)
			}
		})
	}
	bad := []string{
		"resultReason eq 'Admin registered temporary access pass method for user'",
		"loggedByService eq Authentication",
		"activityDateTime gt 2025-03-01T00:00:00Z",
		"activityDateTime ge 'yesterday'",
		"(loggedByService eq 'Authentication Methods'",
		"loggedByService eq 'Authentication Methods' nor category eq 'x'",
	}
	for _, f := range bad {
		t.Run(f, func(t *testing.T) {
			before := len(h.s.Violations())
			code, _, body := h.graph(http.MethodGet, "/auditLogs/directoryAudits?"+url.Values{"$filter": {f}}.Encode(), tok, nil, nil)
			if code != 400 || errorCode(body) != "BadRequest" {
				t.Errorf("%d %v", code, body)
			}
			if len(h.s.Violations()) != before+1 {
				t.Errorf("violations %q", h.s.Violations())
			}
		})
	}
	if code, _, body := h.graph(http.MethodGet, "/auditLogs/directoryAudits?$select=id", tok, nil, nil); code != 400 {
		t.Errorf("$select: %d %v", code, body)
	}
}

// TestAuditPermission: reading the log needs AuditLog.Read.All (or Directory.Read.All, which
// Microsoft's table lists with it); without either Graph answers 403.
func TestAuditPermission(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		roles []string
		want  int
	}{
		{[]string{"User.Read.All", "UserAuthMethod-TAP.ReadWrite.All"}, 403},
		{[]string{"AuditLog.Read.All"}, 200},
		{[]string{"Directory.Read.All"}, 200},
	} {
		h.s.SetRoles(tc.roles...)
		code, _, body := h.graph(http.MethodGet, "/auditLogs/directoryAudits", h.token(), nil, nil)
		if code != tc.want || (code == 403 && errorCode(body) != "Authorization_RequestDenied") {
			t.Errorf("roles %v: %d %v", tc.roles, code, body)
		}
	}
}

// TestAuditPaging: more records than a page come behind @odata.nextLink, each exactly once.
func TestAuditPaging(t *testing.T) {
	h := newAuditHarness(t, graphfake.Options{AuditPageSize: 3})
	tok := h.token()
	for i := range 7 {
		h.s.AddAuditRecord(graphfake.AuditRecord{ID: "rec" + strconv.Itoa(i), At: h.clock.Now().Add(-time.Duration(i) * time.Second),
			Activity: graphfake.ActivityRegistered, Service: graphfake.ServiceAuthMethods})
	}
	code, _, first := h.graph(http.MethodGet, "/auditLogs/directoryAudits", tok, nil, nil)
	if code != 200 || len(first["value"].([]any)) != 3 || first["@odata.nextLink"] == nil {
		t.Fatalf("first page %d %v", code, first)
	}
	seen := map[string]bool{}
	for _, r := range h.audits(tok, url.Values{"$top": {"999"}}) {
		id := r["id"].(string)
		if seen[id] {
			t.Errorf("%s twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 7 {
		t.Errorf("%d records, want 7", len(seen))
	}
}

// TestAuditThrottle: past the reports throttle Graph answers 429 with a Retry-After in whole
// seconds, and the refused request does not count against the app.
func TestAuditThrottle(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	h.s.SetAuditThrottle(2, time.Hour)
	for i := range 2 {
		if code, _, body := h.graph(http.MethodGet, "/auditLogs/directoryAudits", tok, nil, nil); code != 200 {
			t.Fatalf("request %d: %d %v", i, code, body)
		}
	}
	code, hdr, body := h.graph(http.MethodGet, "/auditLogs/directoryAudits", tok, nil, nil)
	if code != 429 || errorCode(body) != "TooManyRequests" {
		t.Fatalf("third: %d %v", code, body)
	}
	if n, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || n < 1 || n > 3600 {
		t.Errorf("Retry-After %q", hdr.Get("Retry-After"))
	}
	h.s.SetAuditThrottle(0, 0)
	if code, _, _ := h.graph(http.MethodGet, "/auditLogs/directoryAudits", tok, nil, nil); code != 200 {
		t.Errorf("throttle off: %d", code)
	}
}

// TestAuditRetentionAndLateRecords: records older than the retention are never returned (7 days
// unless set to 30); a withheld record shows up only once delivered, with its activityDateTime
// in the past; with a delay, records show up that long after they happened.
func TestAuditRetentionAndLateRecords(t *testing.T) {
	h := newAuditHarness(t, graphfake.Options{})
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	h.s.AddAuditRecord(graphfake.AuditRecord{ID: "old", At: h.clock.Now().Add(-8 * 24 * time.Hour), Activity: "Update user"})
	if n := len(h.audits(tok, url.Values{})); n != 0 {
		t.Errorf("8-day-old record returned with 7 days' retention (%d)", n)
	}
	h.s.SetAuditRetention(30 * 24 * time.Hour)
	if n := len(h.audits(tok, url.Values{})); n != 1 {
		t.Errorf("8-day-old record with 30 days' retention: %d records", n)
	}
	h.s.SetAuditRetention(7 * 24 * time.Hour)

	made := h.clock.Now().Add(-10 * time.Minute)
	pass, rec := h.s.CreatePassOutside(graphfake.OutsidePass{UserID: u.ID, At: made, Late: true,
		By: graphfake.AuditInitiator{UserID: "admin-id", UPN: "admin@contoso.com"}})
	if n := len(h.audits(tok, url.Values{})); n != 0 {
		t.Errorf("withheld record returned (%d)", n)
	}
	if !h.s.DeliverAudit(rec.ID) {
		t.Fatal("DeliverAudit did not find the record")
	}
	got := h.audits(tok, url.Values{})
	if len(got) != 1 || got[0]["activityDateTime"] != made.UTC().Format("2006-01-02T15:04:05.0000000Z") {
		t.Fatalf("delivered %v", got)
	}
	if by := got[0]["initiatedBy"].(map[string]any); by["app"] != nil || by["user"].(map[string]any)["userPrincipalName"] != "admin@contoso.com" {
		t.Errorf("initiatedBy %v", by)
	}
	if ps := h.s.Passes(u.ID); len(ps) != 1 || ps[0].ID != pass.ID || ps[0].Deleted {
		t.Errorf("the outside pass is not live: %+v", ps)
	}

	admin := graphfake.AuditInitiator{UserID: "admin-id", UPN: "admin@contoso.com"}
	del, ok := h.s.DeletePassOutside(u.ID, admin)
	if !ok || !h.s.Passes(u.ID)[0].Deleted {
		t.Fatal("DeletePassOutside did not delete the live pass")
	}
	got = h.audits(tok, url.Values{"$filter": {"activityDisplayName eq 'Admin deleted security info'"}})
	if len(got) != 1 || got[0]["id"] != del.ID || modified(got[0])["TemporaryAccessPass.Id"][0] != `"`+pass.ID+`"` {
		t.Errorf("deletion record %v", got)
	}
	if _, ok := h.s.DeletePassOutside(u.ID, admin); ok {
		t.Error("DeletePassOutside deleted a pass that is gone")
	}

	h.s.SetAuditDelay(5 * time.Minute)
	h.s.AddAuditRecord(graphfake.AuditRecord{ID: "delayed", Activity: "Update user"})
	if n := len(h.audits(tok, url.Values{})); n != 1 { // only the creation, 10 minutes old
		t.Errorf("a record within its delay was returned (%d)", n)
	}
	h.clock.Advance(5 * time.Minute)
	if n := len(h.audits(tok, url.Values{})); n != 3 { // the deletion, logged just now, too
		t.Errorf("after the delay: %d records", n)
	}
}
