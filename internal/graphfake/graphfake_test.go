package graphfake_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t     *testing.T
	s     *graphfake.Server
	http  *http.Client
	clock *clock
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, graphfake.Options{}) }

// newHarnessWith is newHarness with fake options (a page size, say); the clock and host names are
// the harness's.
func newHarnessWith(t *testing.T, opts graphfake.Options) *harness {
	clk := &clock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	opts.Now, opts.Hostnames = clk.Now, []string{"graph.example.test"}
	s, err := graphfake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &harness{t: t, s: s, http: &http.Client{Transport: s.Transport(), Timeout: 10 * time.Second}, clock: clk}
}

func (h *harness) do(req *http.Request) (int, http.Header, map[string]any) {
	h.t.Helper()
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			h.t.Fatalf("answer is not JSON (%d): %s", resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, resp.Header, body
}

func (h *harness) tokenRequest(secret, scope string) (int, map[string]any) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {h.s.ClientID()},
		"client_secret": {secret},
		"scope":         {scope},
	}
	req, _ := http.NewRequest(http.MethodPost, h.s.AuthorityHost()+h.s.TenantID()+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, _, body := h.do(req)
	return code, body
}

func (h *harness) token() string {
	h.t.Helper()
	code, body := h.tokenRequest(h.s.ClientSecret(), "https://graph.microsoft.com/.default")
	if code != 200 || body["token_type"] != "Bearer" {
		h.t.Fatalf("token request: %d %v", code, body)
	}
	return body["access_token"].(string)
}

func (h *harness) graph(method, path, token string, body []byte, header map[string]string) (int, http.Header, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.s.GraphURL()+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return h.do(req)
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestDiscoveryMatchesAuthority(t *testing.T) {
	h := newHarness(t)
	req, _ := http.NewRequest(http.MethodGet, h.s.AuthorityHost()+h.s.TenantID()+"/v2.0/.well-known/openid-configuration", nil)
	code, _, body := h.do(req)
	if code != 200 {
		t.Fatalf("%d %v", code, body)
	}
	base := strings.TrimSuffix(h.s.AuthorityHost(), "/") + "/" + h.s.TenantID()
	if body["issuer"] != base+"/v2.0" || body["token_endpoint"] != base+"/oauth2/v2.0/token" {
		t.Errorf("discovery = %v", body)
	}
}

func TestTokenEndpoint(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, secret, scope string
		status              int
		errCode             string
		violation           bool
	}{
		{"ok", h.s.ClientSecret(), "https://graph.microsoft.com/.default", 200, "", false},
		{"wrong secret", "nope", "https://graph.microsoft.com/.default", 401, "invalid_client", false},
		{"wrong scope", h.s.ClientSecret(), "https://management.azure.com/.default", 400, "invalid_scope", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.s.Violations())
			code, body := h.tokenRequest(tc.secret, tc.scope)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %v", code, tc.status, body)
			}
			if tc.errCode != "" {
				if body["error"] != tc.errCode || !strings.HasPrefix(body["error_description"].(string), "AADSTS") {
					t.Errorf("error body %v", body)
				}
				if strings.Contains(body["error_description"].(string), tc.secret) {
					t.Errorf("the error echoes the secret")
				}
			}
			if got := len(h.s.Violations()) > before; got != tc.violation {
				t.Errorf("violation recorded = %v, want %v (%v)", got, tc.violation, h.s.Violations())
			}
		})
	}
}

func TestGraphRequiresIssuedBearer(t *testing.T) {
	h := newHarness(t)
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com", DisplayName: "Alice"})
	for _, tok := range []string{"", "not-a-token-the-fake-issued"} {
		code, hdr, body := h.graph(http.MethodGet, "/users/"+u.ID, tok, nil, nil)
		if code != 401 || errorCode(body) != "InvalidAuthenticationToken" || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("token %q: %d %v", tok, code, body)
		}
	}
	if v := h.s.Violations(); len(v) != 2 || strings.Contains(strings.Join(v, " "), "not-a-token") {
		t.Errorf("violations %q (want two, without the token text)", v)
	}
	code, _, body := h.graph(http.MethodGet, "/users/ALICE@contoso.com", h.token(), nil, nil)
	if code != 200 || body["id"] != u.ID {
		t.Errorf("%d %v", code, body)
	}
}

func TestFilterAndNotFound(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	pat := h.s.AddUser(graphfake.User{UPN: "pobrien@contoso.com", Mail: "pat.o'brien@contoso.com"})
	code, _, body := h.graph(http.MethodGet, "/users/pat.o'brien@contoso.com", tok, nil, nil)
	if code != 404 || errorCode(body) != "Request_ResourceNotFound" {
		t.Errorf("GET by mail should 404 like Graph: %d %v", code, body)
	}
	q := url.Values{"$filter": {"mail eq 'pat.o''brien@contoso.com' or userPrincipalName eq 'pat.o''brien@contoso.com'"}}
	code, _, body = h.graph(http.MethodGet, "/users?"+q.Encode(), tok, nil, nil)
	vals, _ := body["value"].([]any)
	if code != 200 || len(vals) != 1 || vals[0].(map[string]any)["id"] != pat.ID {
		t.Errorf("%d %v", code, body)
	}
	q = url.Values{"$filter": {"startswith(mail,'pat')"}}
	if code, _, _ := h.graph(http.MethodGet, "/users?"+q.Encode(), tok, nil, nil); code != 400 {
		t.Errorf("unsupported filter: %d", code)
	}
	if len(h.s.Violations()) != 1 {
		t.Errorf("violations %v", h.s.Violations())
	}
}

// TestFilterByProxyAddress: an alias is found through the any lambda on proxyAddresses, in any
// case and whatever its type prefix's case, and Graph's rules for the multi-valued property hold.
func TestFilterByProxyAddress(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	ann := h.s.AddUser(graphfake.User{UPN: "ann@contoso.com", Mail: "ann.lee@contoso.com",
		ProxyAddresses: []string{"SMTP:ann.lee@contoso.com", "smtp:al@contoso.com", "SIP:ann.sip@contoso.com"}})
	tests := []struct {
		name      string
		filter    string
		wantCode  int
		wantIDs   []string
		violation bool
	}{
		{name: "alias", filter: "proxyAddresses/any(p:p eq 'smtp:al@contoso.com')", wantCode: 200, wantIDs: []string{ann.ID}},
		{name: "alias in another case", filter: "proxyAddresses/any(x:x eq 'SMTP:AL@contoso.com')", wantCode: 200, wantIDs: []string{ann.ID}},
		{name: "primary through smtp:", filter: "proxyAddresses/any(p:p eq 'smtp:ann.lee@contoso.com')", wantCode: 200, wantIDs: []string{ann.ID}},
		{name: "a SIP address is no smtp: address", filter: "proxyAddresses/any(p:p eq 'smtp:ann.sip@contoso.com')", wantCode: 200},
		{name: "bare address matches no proxy entry", filter: "proxyAddresses/any(p:p eq 'al@contoso.com')", wantCode: 200},
		{name: "with mail and UPN", filter: "mail eq 'al@contoso.com' or userPrincipalName eq 'al@contoso.com' or proxyAddresses/any(p:p eq 'smtp:al@contoso.com')",
			wantCode: 200, wantIDs: []string{ann.ID}},
		{name: "without the any lambda", filter: "proxyAddresses eq 'smtp:al@contoso.com'", wantCode: 400, violation: true},
		{name: "range variable not the one compared", filter: "proxyAddresses/any(p:q eq 'smtp:al@contoso.com')", wantCode: 400, violation: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.s.Violations())
			q := url.Values{"$filter": {tt.filter}}
			code, _, body := h.graph(http.MethodGet, "/users?"+q.Encode(), tok, nil, nil)
			if code != tt.wantCode {
				t.Fatalf("%s: %d %v, want %d", tt.filter, code, body, tt.wantCode)
			}
			if got := len(h.s.Violations()) > before; got != tt.violation {
				t.Errorf("violation recorded = %v, want %v (%v)", got, tt.violation, h.s.Violations())
			}
			if code != 200 {
				return
			}
			vals, _ := body["value"].([]any)
			var ids []string
			for _, v := range vals {
				ids = append(ids, v.(map[string]any)["id"].(string))
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("found %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}

// TestUserSelect: like Graph, a user answer without $select has only the default property set,
// which lacks accountEnabled and userType, and one with $select has exactly the selected
// properties, on every route that returns users; an unknown property is a 400.
func TestUserSelect(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	boss := h.s.AddUser(graphfake.User{UPN: "box@contoso.com", DisplayName: "Shared Box", Disabled: true})
	guest := h.s.AddUser(graphfake.User{UPN: "g_fabrikam.com#EXT#@contoso.com", UserType: "Guest"})
	h.s.SetManager(guest.ID, boss.ID)
	filter := url.Values{"$filter": {"userPrincipalName eq 'box@contoso.com'"}}.Encode()
	selected := "id,accountEnabled,userType"
	tests := []struct {
		name, path string
		want       map[string]any // every property of the answer
	}{
		{"get, default set", "/users/" + boss.ID, map[string]any{"id": boss.ID, "userPrincipalName": "box@contoso.com",
			"displayName": "Shared Box", "mail": nil, "businessPhones": []any{}, "givenName": nil, "surname": nil,
			"jobTitle": nil, "mobilePhone": nil, "officeLocation": nil, "preferredLanguage": nil}},
		{"get, selected", "/users/" + guest.ID + "?$select=" + selected,
			map[string]any{"id": guest.ID, "accountEnabled": true, "userType": "Guest"}},
		{"filter, selected", "/users?" + filter + "&$select=" + selected,
			map[string]any{"id": boss.ID, "accountEnabled": false, "userType": "Member"}},
		{"manager, selected", "/users/" + guest.ID + "/manager?$select=" + selected,
			map[string]any{"@odata.type": "#microsoft.graph.user", "id": boss.ID, "accountEnabled": false, "userType": "Member"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := h.graph(http.MethodGet, tt.path, tok, nil, nil)
			if code != 200 {
				t.Fatalf("%d %v", code, body)
			}
			if vals, ok := body["value"].([]any); ok {
				if len(vals) != 1 {
					t.Fatalf("found %v", vals)
				}
				body = vals[0].(map[string]any)
			}
			delete(body, "@odata.context")
			if fmt.Sprint(body) != fmt.Sprint(tt.want) {
				t.Errorf("answer %v\nwant   %v", body, tt.want)
			}
		})
	}
	code, _, body := h.graph(http.MethodGet, "/users/"+boss.ID+"?$select=id,enabled", tok, nil, nil)
	if e, _ := body["error"].(map[string]any); code != 400 || errorCode(body) != "BadRequest" ||
		!strings.Contains(fmt.Sprint(e["message"]), "Could not find a property named 'enabled'") {
		t.Errorf("unknown property: %d %v", code, body)
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestCreatePassAndExpiry(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	path := "/users/" + u.ID + "/authentication/temporaryAccessPassMethods"
	body := []byte(`{"@odata.type":"#microsoft.graph.temporaryAccessPassAuthenticationMethod","lifetimeInMinutes":60,"isUsableOnce":false}`)
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	gzipHdr := map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}

	code, _, created := h.graph(http.MethodPost, path, tok, gzipped(body), gzipHdr)
	if code != 201 {
		t.Fatalf("%d %v", code, created)
	}
	passCode, _ := created["temporaryAccessPass"].(string)
	if len(passCode) < 8 || created["methodUsabilityReason"] != "EnabledByPolicy" || created["isUsable"] != true {
		t.Errorf("created %v", created)
	}
	if p := h.s.Passes(u.ID); len(p) != 1 || p[0].Code != passCode || p[0].LifetimeMinutes != 60 {
		t.Errorf("recorded %+v", p)
	}

	code, _, list := h.graph(http.MethodGet, path, tok, nil, nil)
	vals, _ := list["value"].([]any)
	if code != 200 || len(vals) != 1 {
		t.Fatalf("%d %v", code, list)
	}
	m := vals[0].(map[string]any)
	if m["temporaryAccessPass"] != nil || m["@odata.type"] != "#microsoft.graph.temporaryAccessPassAuthenticationMethod" {
		t.Errorf("list shows %v", m)
	}

	h.clock.Advance(time.Hour)
	_, _, list = h.graph(http.MethodGet, path, tok, nil, nil)
	if m := list["value"].([]any)[0].(map[string]any); m["methodUsabilityReason"] != "Expired" || m["isUsable"] != false {
		t.Errorf("after the lifetime: %v", m)
	}

	// Refusals by policy, and a body that says gzip but is not.
	cases := []struct {
		name      string
		body      []byte
		hdr       map[string]string
		status    int
		violation bool
	}{
		{"lifetime too long", []byte(`{"lifetimeInMinutes":481}`), jsonHdr, 400, false},
		{"lifetime too short", []byte(`{"lifetimeInMinutes":59}`), jsonHdr, 400, false},
		{"unknown property", []byte(`{"lifetimeInMinutes":60,"code":"x"}`), jsonHdr, 400, true},
		{"mislabelled gzip", body, gzipHdr, 400, true},
		{"not JSON", []byte(`lifetime=60`), jsonHdr, 400, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.s.Violations())
			code, _, resp := h.graph(http.MethodPost, path, tok, tc.body, tc.hdr)
			if code != tc.status || errorCode(resp) == "" {
				t.Errorf("%d %v", code, resp)
			}
			if got := len(h.s.Violations()) > before; got != tc.violation {
				t.Errorf("violation = %v, want %v: %v", got, tc.violation, h.s.Violations())
			}
		})
	}
	if n := len(h.s.Passes(u.ID)); n != 1 {
		t.Errorf("%d passes after refusals", n)
	}

	h.s.SetPolicy(graphfake.Policy{Enabled: true, MinLifetimeMinutes: 10, MaxLifetimeMinutes: 60, DefaultLifetimeMinutes: 10, IsUsableOnce: true})
	if code, _, resp := h.graph(http.MethodPost, path, tok, []byte(`{"isUsableOnce":false}`), jsonHdr); code != 400 {
		t.Errorf("reusable pass under a one-time policy: %d %v", code, resp)
	}
	code, _, created = h.graph(http.MethodPost, path, tok, []byte(`{}`), jsonHdr)
	if code != 201 || created["lifetimeInMinutes"] != float64(10) || created["isUsableOnce"] != true {
		t.Errorf("policy defaults: %d %v", code, created)
	}
	ps := h.s.Passes(u.ID)
	if len(ps) != 2 || !ps[0].Replaced || ps[1].Replaced {
		t.Errorf("replacement: %+v", ps)
	}
	if !h.s.SignIn(u.ID, ps[1].Code) || h.s.SignIn(u.ID, ps[1].Code) {
		t.Errorf("a one-time pass should work exactly once")
	}
}

func TestFailNextAndHang(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	h.s.FailNext(graphfake.OpGetPolicy, 429, 2, "7")
	h.s.FailNext(graphfake.OpGetPolicy, 503, 1, "")
	path := "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
	for i, want := range []int{429, 429, 503, 200} {
		code, hdr, body := h.graph(http.MethodGet, path, tok, nil, nil)
		if code != want {
			t.Fatalf("call %d: %d, want %d (%v)", i, code, want, body)
		}
		if want == 429 && (hdr.Get("Retry-After") != "7" || errorCode(body) != "TooManyRequests") {
			t.Errorf("throttle answer: %v %v", hdr, body)
		}
		if want == 200 && (body["@odata.type"] != "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration" || body["state"] != "enabled") {
			t.Errorf("policy %v", body)
		}
	}
	if n := h.s.Calls(graphfake.OpGetPolicy); n != 4 {
		t.Errorf("calls %d", n)
	}

	h.s.Hang(graphfake.OpGetPolicy, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.s.GraphURL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	if resp, err := h.http.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a hanging call answered")
	}
	if time.Since(start) > 10*time.Second {
		t.Error("the client's deadline did not end the hang")
	}
}

func TestTransportOnlyReachesTheFake(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	req, _ := http.NewRequest(http.MethodGet, "https://graph.example.test/v1.0/users/alice@contoso.com", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if code, _, body := h.do(req); code != 200 {
		t.Errorf("extra host name: %d %v", code, body)
	}
	resp, err := h.http.Get("https://login.microsoftonline.com/common/discovery/instance")
	if err == nil {
		resp.Body.Close()
		t.Fatal("the transport reached a real host")
	}
	if v := h.s.Violations(); len(v) != 1 || !strings.Contains(v[0], "login.microsoftonline.com") {
		t.Errorf("violations %v", v)
	}
}

// eventually waits for cond, failing the test if it does not hold before the deadline.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}

func TestListAndDeletePass(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	path := "/users/" + u.ID + "/authentication/temporaryAccessPassMethods"
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	code, _, created := h.graph(http.MethodPost, path, tok, []byte(`{"lifetimeInMinutes":90,"isUsableOnce":true}`), jsonHdr)
	if code != 201 {
		t.Fatalf("create: %d %v", code, created)
	}
	id, _ := created["id"].(string)

	// The list carries what Entra ID returns for a pass, with the code null.
	code, _, list := h.graph(http.MethodGet, path, tok, nil, nil)
	vals, _ := list["value"].([]any)
	if code != 200 || len(vals) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	m := vals[0].(map[string]any)
	start := h.clock.Now().UTC().Format("2006-01-02T15:04:05.0000000Z")
	want := map[string]any{"id": id, "createdDateTime": start, "startDateTime": start, "lifetimeInMinutes": float64(90),
		"isUsable": true, "isUsableOnce": true}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("list %s = %v, want %v", k, m[k], v)
		}
	}
	if c, ok := m["temporaryAccessPass"]; !ok || c != nil {
		t.Errorf("list temporaryAccessPass = %v (present %v), want null", c, ok)
	}

	cases := []struct {
		name   string
		path   string
		status int
	}{
		{"live pass", path + "/" + id, 204},
		{"already deleted", path + "/" + id, 404},
		{"never existed", path + "/" + "00000000-0000-0000-0000-000000000000", 404},
		{"unknown user", "/users/11111111-2222-3333-4444-555555555555/authentication/temporaryAccessPassMethods/" + id, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.graph(http.MethodDelete, tc.path, tok, nil, nil)
			if code != tc.status {
				t.Fatalf("%d %v, want %d", code, body, tc.status)
			}
			if code == 404 && errorCode(body) == "" {
				t.Errorf("404 without an OData error: %v", body)
			}
		})
	}
	ps := h.s.Passes(u.ID)
	if len(ps) != 1 || !ps[0].Deleted || ps[0].Replaced {
		t.Errorf("after delete: %+v", ps)
	}
	if h.s.SignIn(u.ID, ps[0].Code) {
		t.Error("a deleted pass still signs in")
	}
	if _, _, list := h.graph(http.MethodGet, path, tok, nil, nil); len(list["value"].([]any)) != 0 {
		t.Errorf("a deleted pass is still listed: %v", list)
	}
	if n := h.s.Calls(graphfake.OpDeletePass); n != len(cases) {
		t.Errorf("Calls(OpDeletePass) = %d, want %d", n, len(cases))
	}

	// A replaced pass is gone too; only the new one can be deleted.
	_, _, first := h.graph(http.MethodPost, path, tok, []byte(`{}`), jsonHdr)
	_, _, second := h.graph(http.MethodPost, path, tok, []byte(`{}`), jsonHdr)
	if code, _, _ := h.graph(http.MethodDelete, path+"/"+first["id"].(string), tok, nil, nil); code != 404 {
		t.Errorf("delete of a replaced pass: %d", code)
	}
	if code, _, _ := h.graph(http.MethodDelete, path+"/"+second["id"].(string), tok, nil, nil); code != 204 {
		t.Errorf("delete of the live pass: %d", code)
	}
	if v := h.s.Violations(); len(v) > 0 {
		t.Errorf("violations %v", v)
	}
}

func TestFailNextAndHangDelete(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	path := "/users/" + u.ID + "/authentication/temporaryAccessPassMethods"
	_, _, created := h.graph(http.MethodPost, path, tok, []byte(`{}`), map[string]string{"Content-Type": "application/json"})
	item := path + "/" + created["id"].(string)

	h.s.FailNext(graphfake.OpDeletePass, 429, 1, "3")
	h.s.FailNext(graphfake.OpDeletePass, 403, 1, "")
	for i, want := range []int{429, 403, 204} {
		code, hdr, body := h.graph(http.MethodDelete, item, tok, nil, nil)
		if code != want {
			t.Fatalf("call %d: %d, want %d (%v)", i, code, want, body)
		}
		if want == 429 && hdr.Get("Retry-After") != "3" {
			t.Errorf("Retry-After %q", hdr.Get("Retry-After"))
		}
		if want == 403 && errorCode(body) != "accessDenied" {
			t.Errorf("403 body %v", body)
		}
	}

	h.s.Hang(graphfake.OpDeletePass, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, h.s.GraphURL()+item, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := h.http.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a hanging delete answered")
	}
}

// TestMaxInFlight holds requests open with Hang, so the peak is known exactly rather than hoped
// for from timing.
func TestMaxInFlight(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	path := "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
	if code, _, _ := h.graph(http.MethodGet, path, tok, nil, nil); code != 200 {
		t.Fatal(code)
	}
	if got := h.s.MaxInFlight(graphfake.OpGetPolicy); got != 1 {
		t.Errorf("after one call: %d", got)
	}

	h.s.Hang(graphfake.OpGetPolicy, time.Minute)
	const n = 5
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.s.GraphURL()+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := h.http.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	eventually(t, 10*time.Second, "all requests to reach the fake", func() bool { return h.s.Calls(graphfake.OpGetPolicy) == n+1 })
	for _, op := range []string{graphfake.OpGetPolicy, ""} {
		if got := h.s.MaxInFlight(op); got != n {
			t.Errorf("MaxInFlight(%q) = %d, want %d", op, got, n)
		}
	}
	if got := h.s.MaxInFlight(graphfake.OpCreatePass); got != 0 {
		t.Errorf("MaxInFlight(createPass) = %d with no create", got)
	}
	cancel()
	wg.Wait()
	h.s.Hang(graphfake.OpGetPolicy, 0)
	if code, _, _ := h.graph(http.MethodGet, path, tok, nil, nil); code != 200 {
		t.Fatal(code)
	}
	if got := h.s.MaxInFlight(graphfake.OpGetPolicy); got != n {
		t.Errorf("the peak should stay %d, got %d", n, got)
	}
}

const jsonType = "application/json"

// TestPrivilegeRoutesRequireBearer: the routes behind Manager and Privileges check the token
// like every other Graph route.
func TestPrivilegeRoutesRequireBearer(t *testing.T) {
	h := newHarness(t)
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	filter := url.Values{"$filter": {"principalId eq '" + u.ID + "'"}}.Encode()
	cases := []struct {
		op, method, path string
		body             string
	}{
		{graphfake.OpGetManager, http.MethodGet, "/users/" + u.ID + "/manager", ""},
		{graphfake.OpListRoles, http.MethodGet, "/roleManagement/directory/roleAssignments?" + filter, ""},
		{graphfake.OpListRoleGroups, http.MethodGet, "/groups?" + url.Values{"$filter": {"isAssignableToRole eq true"}}.Encode(), ""},
		{graphfake.OpCheckGroups, http.MethodPost, "/users/" + u.ID + "/checkMemberGroups", `{"groupIds":[]}`},
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			before := len(h.s.Violations())
			code, _, body := h.graph(tc.method, tc.path, "", []byte(tc.body), map[string]string{"Content-Type": jsonType})
			if code != 401 || errorCode(body) != "InvalidAuthenticationToken" {
				t.Errorf("%d %v", code, body)
			}
			if v := h.s.Violations(); len(v) != before+1 || !strings.Contains(v[len(v)-1], tc.op) {
				t.Errorf("violations %q", v)
			}
			if h.s.Calls(tc.op) != 1 {
				t.Errorf("calls %d", h.s.Calls(tc.op))
			}
		})
	}
}

func TestManagerRoute(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	boss := h.s.AddUser(graphfake.User{UPN: "boss@contoso.com", Mail: "boss@contoso.com", DisplayName: "The Boss"})
	withBoss := h.s.AddUser(graphfake.User{UPN: "a@contoso.com"})
	withContact := h.s.AddUser(graphfake.User{UPN: "b@contoso.com"})
	alone := h.s.AddUser(graphfake.User{UPN: "c@contoso.com"})
	h.s.SetManager(withBoss.ID, boss.ID)
	contact := h.s.AddContact("Outside Counsel")
	h.s.SetManager(withContact.ID, contact)
	cases := []struct {
		name, key string
		status    int
		want      map[string]any // fields the answer must have
		msg       string         // part of the error message
	}{
		{"user manager", withBoss.ID, 200, map[string]any{"@odata.type": "#microsoft.graph.user", "id": boss.ID,
			"userPrincipalName": "boss@contoso.com", "displayName": "The Boss", "mail": "boss@contoso.com"}, ""},
		{"by UPN", "A@contoso.com", 200, map[string]any{"id": boss.ID}, ""},
		{"contact manager", withContact.ID, 200, map[string]any{"@odata.type": "#microsoft.graph.orgContact", "id": contact}, ""},
		{"no manager", alone.ID, 404, nil, "Resource 'manager' does not exist"},
		{"unknown user", "nobody@contoso.com", 404, nil, "Resource 'nobody@contoso.com' does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.graph(http.MethodGet, "/users/"+tc.key+"/manager?$select=id,userPrincipalName,displayName,mail", tok, nil, nil)
			if code != tc.status {
				t.Fatalf("%d %v", code, body)
			}
			for k, v := range tc.want {
				if body[k] != v {
					t.Errorf("%s = %v, want %v (%v)", k, body[k], v, body)
				}
			}
			if tc.msg != "" {
				e, _ := body["error"].(map[string]any)
				if errorCode(body) != "Request_ResourceNotFound" || !strings.Contains(e["message"].(string), tc.msg) {
					t.Errorf("error %v", body)
				}
			}
		})
	}
	h.s.FailNext(graphfake.OpGetManager, 403, 1, "")
	if code, _, body := h.graph(http.MethodGet, "/users/"+withBoss.ID+"/manager", tok, nil, nil); code != 403 || errorCode(body) != "Authorization_RequestDenied" {
		t.Errorf("FailNext: %d %v", code, body)
	}
	if v := h.s.Violations(); len(v) != 0 {
		t.Errorf("violations %q", v)
	}
}

func TestRoleAssignmentsRoute(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "admin@contoso.com"})
	other := h.s.AddUser(graphfake.User{UPN: "other@contoso.com"})
	h.s.AssignRole(u.ID, "Global Administrator")
	h.s.AssignRole(u.ID, "Tier 0 Break Glass")
	h.s.AssignRole(other.ID, "Global Administrator")
	list := func(filter, expand string) (int, map[string]any) {
		q := url.Values{"$filter": {filter}}
		if expand != "" {
			q.Set("$expand", expand)
		}
		code, _, body := h.graph(http.MethodGet, "/roleManagement/directory/roleAssignments?"+q.Encode(), tok, nil, nil)
		return code, body
	}

	code, body := list("principalId eq '"+u.ID+"'", "roleDefinition")
	vals, _ := body["value"].([]any)
	if code != 200 || len(vals) != 2 {
		t.Fatalf("%d %v", code, body)
	}
	first := vals[0].(map[string]any)
	def, _ := first["roleDefinition"].(map[string]any)
	if first["principalId"] != u.ID || first["roleDefinitionId"] != "62e90394-69f5-4237-9190-012177145e10" || first["directoryScopeId"] != "/" ||
		def["displayName"] != "Global Administrator" || def["isBuiltIn"] != true || !strings.HasSuffix(first["id"].(string), "-1") {
		t.Errorf("built-in assignment %v", first)
	}
	second := vals[1].(map[string]any)
	if d, _ := second["roleDefinition"].(map[string]any); d["displayName"] != "Tier 0 Break Glass" || d["isBuiltIn"] != false || d["id"] != second["roleDefinitionId"] {
		t.Errorf("custom assignment %v", second)
	}

	if code, body := list("principalId eq '"+u.ID+"'", ""); code != 200 || body["value"].([]any)[0].(map[string]any)["roleDefinition"] != nil {
		t.Errorf("without $expand: %d %v", code, body)
	}
	if code, body := list("principalId eq 'nobody'", "roleDefinition"); code != 200 || len(body["value"].([]any)) != 0 {
		t.Errorf("no assignments: %d %v", code, body)
	}

	bad := []struct{ name, filter, expand string }{
		{"no filter", "", ""},
		{"another filter", "roleDefinitionId eq '62e90394-69f5-4237-9190-012177145e10'", ""},
		{"unsupported expand", "principalId eq '" + u.ID + "'", "principal"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.s.Violations())
			if code, body := list(tc.filter, tc.expand); code != 400 {
				t.Errorf("%d %v", code, body)
			}
			if len(h.s.Violations()) != before+1 {
				t.Errorf("violations %q", h.s.Violations())
			}
		})
	}
}

// TestRoleGroupsPaging: list answers come in pages linked by @odata.nextLink, on the host the
// client called.
func TestRoleGroupsPaging(t *testing.T) {
	h := newHarnessWith(t, graphfake.Options{PageSize: 2})
	tok := h.token()
	var want []string
	for i := 5; i >= 1; i-- {
		id := "00000000-0000-4000-8000-00000000000" + strconv.Itoa(i)
		h.s.AssignRoleToGroup(id, "Global Reader")
		want = append([]string{id}, want...)
	}
	h.s.AddGroup("ffffffff-0000-4000-8000-000000000000") // not role-assignable

	q := url.Values{"$filter": {"isAssignableToRole eq true"}, "$select": {"id"}, "$count": {"true"}, "$top": {"999"}}
	req, _ := http.NewRequest(http.MethodGet, "https://graph.example.test/v1.0/groups?"+q.Encode(), nil)
	var got []string
	for pages := 0; req != nil; pages++ {
		if pages > 5 {
			t.Fatal("nextLink never ends")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("ConsistencyLevel", "eventual")
		code, _, body := h.do(req)
		if code != 200 || body["@odata.count"] != float64(5) {
			t.Fatalf("page %d: %d %v", pages, code, body)
		}
		for _, v := range body["value"].([]any) {
			got = append(got, v.(map[string]any)["id"].(string))
		}
		req = nil
		if next, ok := body["@odata.nextLink"].(string); ok {
			if !strings.HasPrefix(next, "https://graph.example.test/v1.0/groups?") {
				t.Fatalf("nextLink %q is not on the host called", next)
			}
			req, _ = http.NewRequest(http.MethodGet, next, nil)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("groups %v, want %v", got, want)
	}

	bad := []struct {
		name   string
		query  url.Values
		header map[string]string
	}{
		{"all groups", url.Values{}, nil},
		{"another filter", url.Values{"$filter": {"securityEnabled eq true"}}, nil},
		{"$count without ConsistencyLevel", url.Values{"$filter": {"isAssignableToRole eq true"}, "$count": {"true"}}, nil},
		{"a $skiptoken never issued", url.Values{"$filter": {"isAssignableToRole eq true"}, "$skiptoken": {"forged"}}, nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.s.Violations())
			if code, _, body := h.graph(http.MethodGet, "/groups?"+tc.query.Encode(), tok, nil, tc.header); code != 400 {
				t.Errorf("%d %v", code, body)
			}
			if len(h.s.Violations()) != before+1 {
				t.Errorf("violations %q", h.s.Violations())
			}
		})
	}
}

func TestCheckMemberGroupsRoute(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	const a, b, c, d = "0000000a-0000-4000-8000-000000000000", "0000000b-0000-4000-8000-000000000000",
		"0000000c-0000-4000-8000-000000000000", "0000000d-0000-4000-8000-000000000000"
	h.s.AddGroup(a, b) // a ⊃ b ⊃ c ∋ alice; b and c also contain each other (a cycle)
	h.s.AddGroup(b, c)
	h.s.AddGroup(c, b, u.ID)
	h.s.AddGroup(d) // empty
	check := func(key string, body string, header map[string]string) (int, map[string]any) {
		if header == nil {
			header = map[string]string{"Content-Type": jsonType}
		}
		code, _, out := h.graph(http.MethodPost, "/users/"+key+"/checkMemberGroups", tok, []byte(body), header)
		return code, out
	}

	code, body := check(u.ID, `{"groupIds":["`+strings.ToUpper(a)+`","`+d+`","`+c+`","11111111-0000-4000-8000-000000000000"]}`, nil)
	if code != 200 || fmt.Sprint(body["value"]) != fmt.Sprint([]any{strings.ToUpper(a), c}) {
		t.Errorf("transitive membership: %d %v", code, body)
	}
	if v := h.s.Violations(); len(v) != 0 {
		t.Fatalf("violations %q", v)
	}

	ids := make([]string, 21)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"%08x-0000-4000-8000-000000000000"`, i)
	}
	bad := []struct {
		name, key, body string
		header          map[string]string
		status          int
		violation       bool
	}{
		{"21 IDs", u.ID, `{"groupIds":[` + strings.Join(ids, ",") + `]}`, nil, 400, true},
		{"no groupIds", u.ID, `{"ids":["` + a + `"]}`, nil, 400, true},
		{"not JSON", u.ID, `groupIds=` + a, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, true},
		{"unknown user", "nobody@contoso.com", `{"groupIds":["` + a + `"]}`, nil, 404, false},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.s.Violations())
			if code, body := check(tc.key, tc.body, tc.header); code != tc.status {
				t.Errorf("%d, want %d: %v", code, tc.status, body)
			}
			if got := len(h.s.Violations()) > before; got != tc.violation {
				t.Errorf("violation recorded = %v, want %v (%q)", got, tc.violation, h.s.Violations())
			}
		})
	}

	h.s.FailNext(graphfake.OpCheckGroups, 403, 1, "")
	if code, body := check(u.ID, `{"groupIds":["`+a+`"]}`, nil); code != 403 || errorCode(body) != "Authorization_RequestDenied" {
		t.Errorf("FailNext: %d %v", code, body)
	}
	h.s.Hang(graphfake.OpCheckGroups, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.s.GraphURL()+"/users/"+u.ID+"/checkMemberGroups", strings.NewReader(`{"groupIds":[]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", jsonType)
	if resp, err := h.http.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a hanging check answered")
	}
}

// TestRoleAssignableGroupsCannotNest: a test that puts a group inside a role-assignable group
// sets up something Entra ID refuses, and hears about it.
func TestRoleAssignableGroupsCannotNest(t *testing.T) {
	cases := []struct {
		name  string
		setup func(s *graphfake.Server)
	}{
		{"group added to a role-assignable group", func(s *graphfake.Server) {
			s.AssignRoleToGroup("0000000a-0000-4000-8000-000000000000", "Global Administrator")
			s.AddGroup("0000000b-0000-4000-8000-000000000000")
			s.AddGroup("0000000a-0000-4000-8000-000000000000", "0000000B-0000-4000-8000-000000000000")
		}},
		{"role given to a group that holds a group", func(s *graphfake.Server) {
			s.AddGroup("0000000b-0000-4000-8000-000000000000")
			s.AddGroup("0000000a-0000-4000-8000-000000000000", "0000000b-0000-4000-8000-000000000000")
			s.AssignRoleToGroup("0000000a-0000-4000-8000-000000000000", "Global Administrator")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h.s)
			if v := h.s.Violations(); len(v) != 1 || !strings.Contains(v[0], "role-assignable") {
				t.Errorf("violations %q", v)
			}
		})
	}
}

func TestHoldUntilReleased(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	path := "/users/" + u.ID + "/authentication/temporaryAccessPassMethods"
	release := h.s.Hold(graphfake.OpCreatePass)
	answered := make(chan int, 1)
	go func() {
		code, _, _ := h.graph(http.MethodPost, path, tok, []byte(`{}`), map[string]string{"Content-Type": "application/json"})
		answered <- code
	}()
	for h.s.Calls(graphfake.OpCreatePass) == 0 {
		time.Sleep(time.Millisecond)
	}
	// Other operations are not held.
	if code, _, _ := h.graph(http.MethodGet, path, tok, nil, nil); code != 200 {
		t.Fatalf("list while create is held: %d", code)
	}
	select {
	case code := <-answered:
		t.Fatalf("a held call was answered (%d) before release", code)
	default:
	}
	if n := len(h.s.Passes(u.ID)); n != 0 || h.s.InFlight(graphfake.OpCreatePass) != 1 {
		t.Fatalf("a held create made %d passes before release (in flight: %d)", n, h.s.InFlight(graphfake.OpCreatePass))
	}
	release()
	release() // twice is fine
	if code := <-answered; code != 201 || len(h.s.Passes(u.ID)) != 1 {
		t.Fatalf("after release: %d, %d passes", code, len(h.s.Passes(u.ID)))
	}
	if code, _, _ := h.graph(http.MethodPost, path, tok, []byte(`{}`), map[string]string{"Content-Type": "application/json"}); code != 201 {
		t.Fatalf("a call after release: %d", code)
	}
}

func TestRemoveUser(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	path := "/users/" + u.ID + "/authentication/temporaryAccessPassMethods"
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	_, _, created := h.graph(http.MethodPost, path, tok, []byte(`{}`), jsonHdr)
	h.s.RemoveUser(u.ID)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, path},
		{http.MethodPost, path},
		{http.MethodDelete, path + "/" + created["id"].(string)},
		{http.MethodGet, "/users/" + u.ID},
	} {
		var body []byte
		if c.method == http.MethodPost {
			body = []byte(`{}`)
		}
		if code, _, resp := h.graph(c.method, c.path, tok, body, jsonHdr); code != 404 || errorCode(resp) != "Request_ResourceNotFound" {
			t.Errorf("%s %s after the user was removed: %d %v", c.method, c.path, code, resp)
		}
	}
	ps := h.s.Passes(u.ID)
	if len(ps) != 1 || !ps[0].Deleted || h.s.SignIn(u.ID, ps[0].Code) {
		t.Errorf("the removed user's pass: %+v", ps)
	}
}
