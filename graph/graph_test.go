package graph_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/graph"
	"github.com/tapbot/tapbot/internal/graphfake"
)

// clock is the fake's settable clock, so passes expire without sleeping.
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

type env struct {
	t     *testing.T
	fake  *graphfake.Server
	clock *clock
	cred  azcore.TokenCredential
	alice graphfake.User // UPN and mail equal
	bob   graphfake.User // mail differs from UPN
	pat   graphfake.User // apostrophe in mail
	errs  []error        // every error any call returned, checked for leaks at the end
}

const contosoHost = "graph.contoso.test"

// setEnv sets the variables azidentity reads and clears the ones that would pick another
// credential, restoring everything when the test ends.
func setEnv(t *testing.T, vars map[string]string) {
	for _, k := range []string{
		"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_USERNAME", "AZURE_PASSWORD",
		"AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS", "AZURE_ADDITIONALLY_ALLOWED_TENANTS", "GRAPH_BASE_URL",
	} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{t: time.Now()}
	fake, err := graphfake.New(graphfake.Options{Now: clk.Now, Hostnames: []string{contosoHost}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	e := &env{t: t, fake: fake, clock: clk}
	t.Cleanup(e.checkLeaks)
	t.Cleanup(func() {
		if v := fake.Violations(); len(v) > 0 {
			t.Errorf("graphfake saw protocol violations:\n%s", strings.Join(v, "\n"))
		}
	})
	setEnv(t, map[string]string{
		"AZURE_TENANT_ID":      fake.TenantID(),
		"AZURE_CLIENT_ID":      fake.ClientID(),
		"AZURE_CLIENT_SECRET":  fake.ClientSecret(),
		"AZURE_AUTHORITY_HOST": fake.AuthorityHost(),
	})
	e.cred, err = graph.NewCredential(fake.Transport())
	if err != nil {
		t.Fatal(err)
	}
	e.alice = fake.AddUser(graphfake.User{UPN: "alice@contoso.com", Mail: "alice@contoso.com", DisplayName: "Alice Adams"})
	e.bob = fake.AddUser(graphfake.User{UPN: "bob.b@contoso.onmicrosoft.com", Mail: "bob@contoso.com", DisplayName: "Bob Brown"})
	e.pat = fake.AddUser(graphfake.User{UPN: "pobrien@contoso.com", Mail: "pat.o'brien@contoso.com", DisplayName: "Pat O'Brien"})
	return e
}

func (e *env) client(timeout time.Duration) *graph.Client {
	e.t.Helper()
	c, err := graph.New(e.cred, graph.Options{BaseURL: e.fake.GraphURL(), Transport: e.fake.Transport(), Timeout: timeout})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// note records err for the leak check and returns it.
func (e *env) note(err error) error {
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return err
}

// checkLeaks fails the test if any error text holds a pass code, a bearer token or the secret.
func (e *env) checkLeaks() {
	secrets := []string{e.fake.ClientSecret(), "graphfake."} // every token the fake issues starts with "graphfake."
	for _, p := range e.fake.AllPasses() {
		secrets = append(secrets, p.Code)
	}
	for _, err := range e.errs {
		text := err.Error() + "\n" + fmt.Sprintf("%v %+v %#v", err, err, err) + "\n" + approvals.UserMessage(err)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				e.t.Errorf("error text leaks a secret (%.4s…): %s", s, text)
			}
		}
	}
}

func wantCode(t *testing.T, err error, code approvals.Code) *approvals.Error {
	t.Helper()
	var ae *approvals.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want *approvals.Error with code %s, got %T: %v", code, err, err)
	}
	t.Logf("%s error: %v", ae.Code, err)
	if ae.Code != code {
		t.Fatalf("want code %s, got %s: %v", code, ae.Code, err)
	}
	if !plainSentence(ae.Message) {
		t.Errorf("message is not a plain sentence: %q", ae.Message)
	}
	return ae
}

// plainSentence: what Slack users see starts with a letter, ends with a full stop, and carries no
// JSON or Go error syntax.
func plainSentence(s string) bool {
	return s != "" && strings.HasSuffix(s, ".") && !strings.ContainsAny(s, "{}\n") &&
		!strings.Contains(s, "%!") && !strings.Contains(s, "error status code")
}

func TestFindUser(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()

	cases := []struct {
		name       string
		input      string
		wantID     string
		wantUPN    string
		wantCode   approvals.Code
		wantFilter bool // whether the $filter fallback must have run
	}{
		{name: "by UPN", input: "alice@contoso.com", wantID: e.alice.ID, wantUPN: e.alice.UPN},
		{name: "by UPN any case, trimmed", input: "  ALICE@contoso.com ", wantID: e.alice.ID, wantUPN: e.alice.UPN},
		{name: "by mail fallback", input: "bob@contoso.com", wantID: e.bob.ID, wantUPN: e.bob.UPN, wantFilter: true},
		{name: "mail with apostrophe", input: "pat.o'brien@contoso.com", wantID: e.pat.ID, wantUPN: e.pat.UPN, wantFilter: true},
		{name: "not found", input: "nobody@contoso.com", wantCode: approvals.NotFound, wantFilter: true},
		{name: "empty", input: "  ", wantCode: approvals.Invalid},
		{name: "no at sign", input: "alice", wantCode: approvals.Invalid},
		{name: "two at signs", input: "a@b@contoso.com", wantCode: approvals.Invalid},
		{name: "space inside", input: "al ice@contoso.com", wantCode: approvals.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getBefore, filterBefore := e.fake.Calls(graphfake.OpGetUser), e.fake.Calls(graphfake.OpFindUsers)
			u, err := c.FindUser(ctx, tc.input)
			e.note(err)
			if tc.wantCode != "" {
				ae := wantCode(t, err, tc.wantCode)
				if tc.wantCode == approvals.NotFound && ae.Message != "No Entra ID account found for nobody@contoso.com." {
					t.Errorf("message %q", ae.Message)
				}
				if tc.wantCode == approvals.Invalid && e.fake.Calls(graphfake.OpGetUser) != getBefore {
					t.Errorf("invalid input still called Graph")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if u.ID != tc.wantID || u.UPN != tc.wantUPN || u.DisplayName == "" {
					t.Errorf("got %+v, want ID %s UPN %s", u, tc.wantID, tc.wantUPN)
				}
			}
			if ran := e.fake.Calls(graphfake.OpFindUsers) > filterBefore; ran != tc.wantFilter {
				t.Errorf("filter fallback ran = %v, want %v", ran, tc.wantFilter)
			}
		})
	}

	t.Run("ambiguous mail", func(t *testing.T) {
		e.fake.AddUser(graphfake.User{UPN: "carol1@contoso.com", Mail: "shared@contoso.com", DisplayName: "Carol 1"})
		e.fake.AddUser(graphfake.User{UPN: "carol2@contoso.com", Mail: "shared@contoso.com", DisplayName: "Carol 2"})
		_, err := c.FindUser(ctx, "shared@contoso.com")
		wantCode(t, e.note(err), approvals.Invalid)
	})
	t.Run("forbidden", func(t *testing.T) {
		e.fake.FailNext(graphfake.OpGetUser, http.StatusForbidden, 1, "")
		_, err := c.FindUser(ctx, "alice@contoso.com")
		ae := wantCode(t, e.note(err), approvals.Forbidden)
		if !strings.Contains(ae.Message, "User.Read.All") {
			t.Errorf("message %q", ae.Message)
		}
		var odata *odataerrors.ODataError
		if !errors.As(err, &odata) || odata.ResponseStatusCode != http.StatusForbidden {
			t.Errorf("cause is not the SDK's ODataError with status 403: %v", err)
		}
		var apiErr *graph.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "Authorization_RequestDenied" || apiErr.RequestID == "" {
			t.Errorf("APIError = %+v", apiErr)
		}
	})
	t.Run("token rejected by Graph", func(t *testing.T) {
		e.fake.FailNext(graphfake.OpGetUser, http.StatusUnauthorized, 1, "")
		_, err := c.FindUser(ctx, "alice@contoso.com")
		wantCode(t, e.note(err), approvals.Unavailable)
	})
}

func TestPassPolicy(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()
	cases := []struct {
		name   string
		policy graphfake.Policy
		want   approvals.PassPolicy
	}{
		{"default", graphfake.DefaultPolicy, approvals.PassPolicy{Enabled: true, MinLifetime: time.Hour, MaxLifetime: 8 * time.Hour, DefaultLifetime: time.Hour}},
		{"one-time, custom range", graphfake.Policy{Enabled: true, MinLifetimeMinutes: 10, MaxLifetimeMinutes: 43200, DefaultLifetimeMinutes: 120, IsUsableOnce: true},
			approvals.PassPolicy{Enabled: true, MinLifetime: 10 * time.Minute, MaxLifetime: 30 * 24 * time.Hour, DefaultLifetime: 2 * time.Hour, OneTimeOnly: true}},
		{"disabled", graphfake.Policy{Enabled: false, MinLifetimeMinutes: 60, MaxLifetimeMinutes: 480, DefaultLifetimeMinutes: 60},
			approvals.PassPolicy{Enabled: false, MinLifetime: time.Hour, MaxLifetime: 8 * time.Hour, DefaultLifetime: time.Hour}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.fake.SetPolicy(tc.policy)
			got, err := c.PassPolicy(ctx)
			if e.note(err) != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("forbidden", func(t *testing.T) {
		e.fake.FailNext(graphfake.OpGetPolicy, http.StatusForbidden, 1, "")
		_, err := c.PassPolicy(ctx)
		ae := wantCode(t, e.note(err), approvals.Forbidden)
		if !strings.Contains(ae.Message, "Policy.Read.AuthenticationMethod") {
			t.Errorf("message %q", ae.Message)
		}
	})
}

func TestHasActivePass(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()
	cases := []struct {
		name    string
		prepare func(t *testing.T, userID string)
		want    bool
	}{
		{"no pass", func(*testing.T, string) {}, false},
		{"usable pass", func(t *testing.T, id string) { mustCreate(t, e, c, id, time.Hour, false) }, true},
		{"expired pass", func(t *testing.T, id string) {
			mustCreate(t, e, c, id, time.Hour, false)
			e.clock.Advance(61 * time.Minute)
		}, false},
		{"one-time pass already used", func(t *testing.T, id string) {
			p := mustCreate(t, e, c, id, time.Hour, true)
			if !e.fake.SignIn(id, p.Code) {
				t.Fatal("sign-in with the new pass failed")
			}
		}, false},
		{"reusable pass after sign-in", func(t *testing.T, id string) {
			p := mustCreate(t, e, c, id, time.Hour, false)
			if !e.fake.SignIn(id, p.Code) {
				t.Fatal("sign-in with the new pass failed")
			}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := e.fake.AddUser(graphfake.User{UPN: strings.ReplaceAll(tc.name, " ", ".") + "@contoso.com", DisplayName: tc.name})
			tc.prepare(t, u.ID)
			got, err := c.HasActivePass(ctx, u.ID)
			if e.note(err) != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("HasActivePass = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		_, err := c.HasActivePass(ctx, "00000000-0000-0000-0000-000000000000")
		wantCode(t, e.note(err), approvals.NotFound)
	})
	t.Run("forbidden", func(t *testing.T) {
		e.fake.FailNext(graphfake.OpListPasses, http.StatusForbidden, 1, "")
		_, err := c.HasActivePass(ctx, e.alice.ID)
		wantCode(t, e.note(err), approvals.Forbidden)
	})
}

func mustCreate(t *testing.T, e *env, c *graph.Client, userID string, lifetime time.Duration, once bool) approvals.Pass {
	t.Helper()
	p, err := c.CreatePass(context.Background(), userID, lifetime, once)
	if e.note(err) != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreatePass(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()

	t.Run("happy path", func(t *testing.T) {
		p := mustCreate(t, e, c, e.alice.ID, 2*time.Hour, true)
		issued := e.fake.Passes(e.alice.ID)
		if len(issued) != 1 {
			t.Fatalf("fake recorded %d passes, want 1", len(issued))
		}
		got := issued[0]
		if len(p.Code) < 8 || p.Code != got.Code {
			t.Errorf("returned code (len %d) does not match the one Entra issued", len(p.Code))
		}
		if got.LifetimeMinutes != 120 || !got.UsableOnce {
			t.Errorf("fake recorded lifetime %d once %v", got.LifetimeMinutes, got.UsableOnce)
		}
		if p.Lifetime != 2*time.Hour || !p.UsableOnce || !p.StartsAt.Equal(got.StartsAt.Truncate(100*time.Nanosecond)) {
			t.Errorf("pass = lifetime %s once %v starts %s; fake starts %s", p.Lifetime, p.UsableOnce, p.StartsAt, got.StartsAt)
		}
		if s := fmt.Sprintf("%v %+v %#v %s", p, p, p, p); strings.Contains(s, p.Code) {
			t.Errorf("formatting a Pass shows its code")
		}
	})
	t.Run("second pass replaces the first", func(t *testing.T) {
		mustCreate(t, e, c, e.alice.ID, time.Hour, false)
		issued := e.fake.Passes(e.alice.ID)
		if len(issued) != 2 || !issued[0].Replaced || issued[1].Replaced {
			t.Errorf("passes after replacement: %+v", len(issued))
		}
	})

	refusals := []struct {
		name     string
		policy   graphfake.Policy
		lifetime time.Duration
		once     bool
		wantCode approvals.Code
		wantText string
		calls    int // Graph create calls expected
	}{
		{"lifetime above policy", graphfake.DefaultPolicy, 10 * 24 * time.Hour, false, approvals.Invalid,
			"Entra ID refused the pass: the lifetime is outside the tenant's Temporary Access Pass policy (", 1},
		{"lifetime below policy", graphfake.DefaultPolicy, 10 * time.Minute, false, approvals.Invalid,
			"the lifetime is outside the tenant's Temporary Access Pass policy", 1},
		{"policy disabled", graphfake.Policy{Enabled: false, MinLifetimeMinutes: 60, MaxLifetimeMinutes: 480, DefaultLifetimeMinutes: 60}, time.Hour, false,
			approvals.Invalid, "Entra ID refused the pass: the pass does not fit the tenant's Temporary Access Pass policy", 1},
		{"reusable pass while policy forces one-time", graphfake.Policy{Enabled: true, MinLifetimeMinutes: 60, MaxLifetimeMinutes: 480, DefaultLifetimeMinutes: 60, IsUsableOnce: true},
			time.Hour, false, approvals.Invalid, "one-time", 1},
		{"not whole minutes", graphfake.DefaultPolicy, 90*time.Minute + 30*time.Second, false, approvals.Invalid, "whole number of minutes", 0},
		{"zero lifetime", graphfake.DefaultPolicy, 0, false, approvals.Invalid, "positive", 0},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e.fake.SetPolicy(tc.policy)
			t.Cleanup(func() { e.fake.SetPolicy(graphfake.DefaultPolicy) })
			before, passes := e.fake.Calls(graphfake.OpCreatePass), len(e.fake.Passes(e.bob.ID))
			_, err := c.CreatePass(ctx, e.bob.ID, tc.lifetime, tc.once)
			ae := wantCode(t, e.note(err), tc.wantCode)
			if !strings.Contains(ae.Message, tc.wantText) {
				t.Errorf("message %q does not contain %q", ae.Message, tc.wantText)
			}
			if n := e.fake.Calls(graphfake.OpCreatePass) - before; n != tc.calls {
				t.Errorf("%d create calls, want %d", n, tc.calls)
			}
			if len(e.fake.Passes(e.bob.ID)) != passes {
				t.Errorf("a pass was created")
			}
		})
	}

	t.Run("forbidden", func(t *testing.T) {
		e.fake.FailNext(graphfake.OpCreatePass, http.StatusForbidden, 1, "")
		_, err := c.CreatePass(ctx, e.bob.ID, time.Hour, false)
		ae := wantCode(t, e.note(err), approvals.Forbidden)
		if ae.Message != "Entra ID does not allow tapbot to create a pass for this user (privileged accounts need a higher admin role, or the app lacks UserAuthMethod-TAP.ReadWrite.All)." {
			t.Errorf("message %q", ae.Message)
		}
	})
	t.Run("user deleted", func(t *testing.T) {
		_, err := c.CreatePass(ctx, "11111111-2222-3333-4444-555555555555", time.Hour, false)
		wantCode(t, e.note(err), approvals.NotFound)
	})
	t.Run("503 forever", func(t *testing.T) {
		before, passes := e.fake.Calls(graphfake.OpCreatePass), len(e.fake.Passes(e.bob.ID))
		e.fake.FailNext(graphfake.OpCreatePass, http.StatusServiceUnavailable, 1000, "0")
		t.Cleanup(func() { e.fake.FailNext(graphfake.OpCreatePass, 0, 0, "") })
		_, err := c.CreatePass(ctx, e.bob.ID, time.Hour, false)
		ae := wantCode(t, e.note(err), approvals.Unavailable)
		if ae.Message != "Microsoft Graph is throttling or unavailable; try again in a few minutes." {
			t.Errorf("message %q", ae.Message)
		}
		// one attempt plus the SDK's three retries
		if n := e.fake.Calls(graphfake.OpCreatePass) - before; n != 4 {
			t.Errorf("%d create calls, want 4", n)
		}
		if len(e.fake.Passes(e.bob.ID)) != passes {
			t.Errorf("a pass was created")
		}
	})
}

// TestCreatePassRetriesThrottling runs the throttled create many times with a fresh client each
// round: kiota assembles its default middleware in map order, so a single run proves little.
func TestCreatePassRetriesThrottling(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const rounds = 20
	for i := 0; i < rounds; i++ {
		c := e.client(10 * time.Second)
		before, passes := e.fake.Calls(graphfake.OpCreatePass), len(e.fake.Passes(e.alice.ID))
		e.fake.FailNext(graphfake.OpCreatePass, http.StatusTooManyRequests, 2, "0")
		p, err := c.CreatePass(ctx, e.alice.ID, time.Hour, true)
		if e.note(err) != nil {
			t.Fatalf("round %d: %v (violations: %v)", i, err, e.fake.Violations())
		}
		issued := e.fake.Passes(e.alice.ID)
		if len(issued) != passes+1 {
			t.Fatalf("round %d: %d passes created, want exactly one", i, len(issued)-passes)
		}
		if issued[len(issued)-1].Code != p.Code {
			t.Fatalf("round %d: returned code is not the live one", i)
		}
		if n := e.fake.Calls(graphfake.OpCreatePass) - before; n != 3 {
			t.Fatalf("round %d: %d create calls, want 3 (two 429s, one 201)", i, n)
		}
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	const timeout = time.Second
	c := e.client(timeout)
	ctx := context.Background()
	if _, err := c.PassPolicy(ctx); e.note(err) != nil { // gets the token, so only Graph hangs below
		t.Fatal(err)
	}
	cases := []struct {
		name string
		op   string
		call func() error
	}{
		{"policy", graphfake.OpGetPolicy, func() error { _, err := c.PassPolicy(ctx); return err }},
		{"create", graphfake.OpCreatePass, func() error { _, err := c.CreatePass(ctx, e.alice.ID, time.Hour, false); return err }},
		{"find", graphfake.OpGetUser, func() error { _, err := c.FindUser(ctx, "alice@contoso.com"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.fake.Hang(tc.op, time.Minute)
			t.Cleanup(func() { e.fake.Hang(tc.op, 0) })
			start := time.Now()
			err := tc.call()
			elapsed := time.Since(start)
			ae := wantCode(t, e.note(err), approvals.Unavailable)
			if !strings.HasPrefix(ae.Message, "Microsoft Graph did not answer in time") {
				t.Errorf("message %q", ae.Message)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
			}
			if elapsed > timeout+5*time.Second {
				t.Errorf("took %s with a %s timeout", elapsed, timeout)
			}
		})
	}
}

func TestBadClientSecret(t *testing.T) {
	e := newEnv(t)
	const wrong = "wr0ng~S3cret-value-that-must-not-leak"
	t.Setenv("AZURE_CLIENT_SECRET", wrong)
	cred, err := graph.NewCredential(e.fake.Transport())
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.New(cred, graph.Options{BaseURL: e.fake.GraphURL(), Transport: e.fake.Transport(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindUser(context.Background(), "alice@contoso.com")
	ae := wantCode(t, e.note(err), approvals.Unavailable)
	if !strings.Contains(ae.Message, "could not sign in") {
		t.Errorf("message %q", ae.Message)
	}
	if !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("the cause for logs should name Entra's error: %v", err)
	}
	if text := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(text, wrong) {
		t.Errorf("error leaks the client secret: %s", text)
	}
	if n := e.fake.Calls(graphfake.OpGetUser); n != 0 {
		t.Errorf("Graph was called %d times without a token", n)
	}
}

// TestTokenForAnyHost points the client at a host name that is neither Microsoft's nor loopback:
// kiota sends no token to hosts outside its allow list, so the fake would answer 401 (and record a
// violation) if New did not allow the base URL's own host.
func TestTokenForAnyHost(t *testing.T) {
	e := newEnv(t)
	c, err := graph.New(e.cred, graph.Options{BaseURL: "https://" + contosoHost + "/v1.0", Transport: e.fake.Transport(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.FindUser(context.Background(), "alice@contoso.com")
	if e.note(err) != nil {
		t.Fatal(err)
	}
	if u.ID != e.alice.ID {
		t.Errorf("got %+v", u)
	}
	p, err := c.CreatePass(context.Background(), u.ID, time.Hour, false)
	if e.note(err) != nil || p.Code == "" {
		t.Fatalf("create through %s: %v", contosoHost, err)
	}
}

func TestCheckSignIn(t *testing.T) {
	e := newEnv(t)
	c, err := graph.New(e.cred, graph.Options{BaseURL: e.fake.GraphURL(), Transport: e.fake.Transport(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignIn(context.Background()); err != nil {
		t.Fatalf("CheckSignIn with good credentials: %v", err)
	}
	t.Setenv("AZURE_CLIENT_SECRET", "wrong-secret-value")
	bad, err := graph.NewCredential(e.fake.Transport())
	if err != nil {
		t.Fatal(err)
	}
	c, err = graph.New(bad, graph.Options{BaseURL: e.fake.GraphURL(), Transport: e.fake.Transport(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckSignIn(context.Background())
	if err == nil {
		t.Fatal("CheckSignIn accepted a wrong client secret")
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatal("the sign-in error shows the client secret")
	}
}

type fakeCred struct{}

func (fakeCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	cred := fakeCred{}
	for _, u := range []string{"graph.microsoft.com/v1.0", "ftp://graph.microsoft.com", "http://graph.microsoft.com/v1.0", "https:///v1.0"} {
		if _, err := graph.New(cred, graph.Options{BaseURL: u}); err == nil {
			t.Errorf("New accepted base URL %q", u)
		}
	}
	if _, err := graph.New(nil, graph.Options{}); err == nil {
		t.Error("New accepted a nil credential")
	}
}

// TestUnreachable: a Graph that refuses connections is Unavailable, not "something went wrong".
func TestUnreachable(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := graph.New(e.cred, graph.Options{BaseURL: "https://" + addr + "/v1.0", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PassPolicy(context.Background())
	wantCode(t, e.note(err), approvals.Unavailable)
}

// TestConcurrentUse: one Client serves many Slack interactions at once.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			u := e.fake.AddUser(graphfake.User{UPN: fmt.Sprintf("worker%d@contoso.com", i), DisplayName: "Worker"})
			for j := 0; j < 3; j++ {
				found, err := c.FindUser(ctx, u.UPN)
				if err == nil {
					_, err = c.PassPolicy(ctx)
				}
				if err == nil {
					_, err = c.CreatePass(ctx, found.ID, time.Hour, false)
				}
				if err == nil {
					var active bool
					if active, err = c.HasActivePass(ctx, found.ID); err == nil && !active {
						err = fmt.Errorf("worker %d: new pass not active", i)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(e.note(err))
	}
	if n := len(e.fake.AllPasses()); n != workers*3 {
		t.Errorf("%d passes, want %d", n, workers*3)
	}
}
