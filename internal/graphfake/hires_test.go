package graphfake_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
)

// TestHireDateIsAnAdvancedQuery: the fake refuses what Graph refuses about employeeHireDate, with
// Graph's error, so a client that forgets the advanced-query parameters fails in tests as it
// would in production.
func TestHireDateIsAnAdvancedQuery(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "new@contoso.com", DisplayName: "New Starter"})
	h.s.SetHireDate(u.ID, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	window := "employeeHireDate ge 2026-12-05T00:00:00Z and employeeHireDate le 2026-12-08T00:00:00Z"
	eventual := map[string]string{"ConsistencyLevel": "eventual"}
	cases := []struct {
		name     string
		query    url.Values
		header   map[string]string
		wantCode int
		wantErr  string
	}{
		{"no header, no $count", url.Values{"$filter": {window}}, nil, 400, "Request_UnsupportedQuery"},
		{"$count without the header", url.Values{"$filter": {window}, "$count": {"true"}}, nil, 400, "Request_UnsupportedQuery"},
		{"the header without $count", url.Values{"$filter": {window}}, eventual, 400, "Request_UnsupportedQuery"},
		{"$expand in an advanced query", url.Values{"$filter": {window}, "$count": {"true"}, "$expand": {"manager"}}, eventual, 400, "Request_UnsupportedQuery"},
		{"a bare date", url.Values{"$filter": {"employeeHireDate ge 2026-12-05"}, "$count": {"true"}}, eventual, 400, "Request_UnsupportedQuery"},
		{"a quoted date", url.Values{"$filter": {"employeeHireDate ge '2026-12-05T00:00:00Z'"}, "$count": {"true"}}, eventual, 400, "Request_UnsupportedQuery"},
		{"gt, which employeeHireDate does not support", url.Values{"$filter": {"employeeHireDate gt 2026-12-05T00:00:00Z"}, "$count": {"true"}}, eventual, 400, "Request_UnsupportedQuery"},
		{"advanced", url.Values{"$filter": {window}, "$count": {"true"}}, eventual, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.graph(http.MethodGet, "/users?"+tc.query.Encode(), tok, nil, tc.header)
			if code != tc.wantCode || errorCode(body) != tc.wantErr {
				t.Fatalf("%d %q, want %d %q (%v)", code, errorCode(body), tc.wantCode, tc.wantErr, body)
			}
		})
	}
	// employeeHireDate and accountEnabled come back only when $select names them.
	q := url.Values{"$filter": {window}, "$count": {"true"}}
	_, _, body := h.graph(http.MethodGet, "/users?"+q.Encode(), tok, nil, eventual)
	first := body["value"].([]any)[0].(map[string]any)
	if _, ok := first["employeeHireDate"]; ok {
		t.Errorf("employeeHireDate returned without $select: %v", first)
	}
	q.Set("$select", "id,employeeHireDate,accountEnabled")
	_, _, body = h.graph(http.MethodGet, "/users?"+q.Encode(), tok, nil, eventual)
	first = body["value"].([]any)[0].(map[string]any)
	if first["employeeHireDate"] != "2026-12-07T00:00:00Z" || first["accountEnabled"] != true || body["@odata.count"] != float64(1) {
		t.Errorf("with $select: %v", body)
	}
}
