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
	return newEnvWith(t, graphfake.Options{})
}

// newEnvWith is newEnv with fake options (latency, say); the clock and host names are the env's.
func newEnvWith(t *testing.T, opts graphfake.Options) *env {
	t.Helper()
	clk := &clock{t: time.Now()}
	opts.Now, opts.Hostnames = clk.Now, []string{contosoHost}
	fake, err := graphfake.New(opts)
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
	e.bob = fake.AddUser(graphfake.User{UPN: "bob.b@contoso.onmicrosoft.com", Mail: "bob@contoso.com", DisplayName: "Bob Brown",
		ProxyAddresses: []string{"SMTP:bob@contoso.com", "smtp:robert.brown@contoso.com", "SIP:bob.sip@contoso.com"}})
	e.pat = fake.AddUser(graphfake.User{UPN: "pobrien@contoso.com", Mail: "pat.o'brien@contoso.com", DisplayName: "Pat O'Brien"})
	return e
}

func (e *env) client(timeout time.Duration) *graph.Client {
	e.t.Helper()
	return e.clientWith(graph.Options{Timeout: timeout})
}

// clientWith builds a client on the fake with opts' tuning.
func (e *env) clientWith(opts graph.Options) *graph.Client {
	e.t.Helper()
	opts.BaseURL, opts.Transport = e.fake.GraphURL(), e.fake.Transport()
	c, err := graph.New(e.cred, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// observer records what Options.Observe reports, as "operation status".
type observer struct {
	mu  sync.Mutex
	got []string
}

func (o *observer) observe(op string, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, fmt.Sprintf("%s %d", op, status))
}

// take returns what was observed since the last take.
func (o *observer) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.got
	o.got = nil
	return out
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

// note records err for the leak check and returns it.
func (e *env) note(err error) error {
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return err
}

// checkLeaks fails the test if any error text holds a pass code, a bearer token or the secret.
func (e *env) checkLeaks() {
	secrets := []string{e.fake.ClientSecret(), graphfake.TokenPrefix} // every token the fake issues starts with it
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
		{name: "by proxy address (an alias)", input: "robert.brown@contoso.com", wantID: e.bob.ID, wantUPN: e.bob.UPN, wantFilter: true},
		{name: "by proxy address in another case", input: "Robert.Brown@CONTOSO.com", wantID: e.bob.ID, wantUPN: e.bob.UPN, wantFilter: true},
		{name: "a SIP address is not an email address", input: "bob.sip@contoso.com", wantCode: approvals.NotFound, wantFilter: true},
		{name: "not found", input: "nobody@contoso.com", wantCode: approvals.NotFound, wantFilter: true},
		{name: "empty", input: "  ", wantCode: approvals.Invalid},
		{name: "no at sign", input: "alice", wantCode: approvals.Invalid},
		{name: "two at signs", input: "a@b@contoso.com", wantCode: approvals.Invalid},
		{name: "space inside", input: "al ice@contoso.com", wantCode: approvals.Invalid},
	}
	mails := map[string]string{e.alice.ID: e.alice.Mail, e.bob.ID: e.bob.Mail, e.pat.ID: e.pat.Mail}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getBefore, filterBefore := e.fake.Calls(graphfake.OpGetUser), e.fake.Calls(graphfake.OpFindUsers)
			u, err := c.FindUser(ctx, tc.input)
			e.note(err)
			if tc.wantCode != "" {
				ae := wantCode(t, err, tc.wantCode)
				if tc.wantCode == approvals.NotFound && ae.Message != "No Entra ID account found for "+tc.input+"." {
					t.Errorf("message %q", ae.Message)
				}
				if tc.wantCode == approvals.Invalid && e.fake.Calls(graphfake.OpGetUser) != getBefore {
					t.Errorf("invalid input still called Graph")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if u.ID != tc.wantID || u.UPN != tc.wantUPN || u.DisplayName == "" || u.Mail != mails[tc.wantID] {
					t.Errorf("got %+v, want ID %s UPN %s mail %s", u, tc.wantID, tc.wantUPN, mails[tc.wantID])
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
		obs := &observer{}
		c := e.clientWith(graph.Options{Timeout: 10 * time.Second, Observe: obs.observe})
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
		if got, want := strings.Join(obs.take(), ", "), "create_pass 429, create_pass 429, create_pass 201"; got != want {
			t.Fatalf("round %d: observed %s, want %s", i, got, want)
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

func TestListPasses(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()

	if got, err := c.ListPasses(ctx, e.alice.ID); e.note(err) != nil || len(got) != 0 {
		t.Fatalf("no pass yet: %+v, %v", got, err)
	}
	p := mustCreate(t, e, c, e.alice.ID, 90*time.Minute, true)
	issued := e.fake.Passes(e.alice.ID)[0]
	got, err := c.ListPasses(ctx, e.alice.ID)
	if e.note(err) != nil {
		t.Fatal(err)
	}
	want := approvals.PassInfo{ID: issued.ID, CreatedAt: issued.CreatedAt.Truncate(100 * time.Nanosecond),
		StartsAt: issued.StartsAt.Truncate(100 * time.Nanosecond), Lifetime: 90 * time.Minute, Usable: true}
	if len(got) != 1 || got[0].ID != want.ID || !got[0].CreatedAt.Equal(want.CreatedAt) || !got[0].StartsAt.Equal(want.StartsAt) ||
		got[0].Lifetime != want.Lifetime || got[0].Usable != want.Usable {
		t.Fatalf("ListPasses = %+v, want [%+v]", got, want)
	}
	if p.ID != issued.ID {
		t.Errorf("CreatePass ID %q, fake issued %q", p.ID, issued.ID)
	}
	e.clock.Advance(91 * time.Minute)
	if got, err := c.ListPasses(ctx, e.alice.ID); e.note(err) != nil || len(got) != 1 || got[0].Usable {
		t.Errorf("after expiry: %+v, %v", got, err)
	}

	failures := []struct {
		name    string
		prepare func()
		userID  string
		want    approvals.Code
		text    string
	}{
		{"no user given", func() {}, " ", approvals.Invalid, "No Entra ID user was given."},
		{"unknown user", func() {}, "00000000-0000-0000-0000-000000000000", approvals.NotFound, "No Entra ID account found"},
		{"forbidden", func() { e.fake.FailNext(graphfake.OpListPasses, http.StatusForbidden, 1, "") }, e.alice.ID,
			approvals.Forbidden, "UserAuthMethod-TAP.ReadWrite.All"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare()
			_, err := c.ListPasses(ctx, tc.userID)
			if ae := wantCode(t, e.note(err), tc.want); !strings.Contains(ae.Message, tc.text) {
				t.Errorf("message %q does not contain %q", ae.Message, tc.text)
			}
		})
	}
}

func TestDeletePass(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()
	create := func(t *testing.T, uid string) string { return mustCreate(t, e, c, uid, time.Hour, false).ID }
	cases := []struct {
		name string
		// prepare gets a fresh user and returns what to delete.
		prepare   func(t *testing.T, uid string) (userID, passID string)
		want      approvals.Code // "" means success
		text      string
		calls     int  // DELETE requests the call itself makes
		liveAfter bool // whether the fresh user still has a pass afterwards
	}{
		{name: "live pass", calls: 1, prepare: func(t *testing.T, uid string) (string, string) { return uid, create(t, uid) }},
		{name: "already deleted is not an error", calls: 1, prepare: func(t *testing.T, uid string) (string, string) {
			id := create(t, uid)
			if err := c.DeletePass(ctx, uid, id); e.note(err) != nil {
				t.Fatal(err)
			}
			return uid, id
		}},
		{name: "replaced pass is gone", calls: 1, liveAfter: true, prepare: func(t *testing.T, uid string) (string, string) {
			old := create(t, uid)
			create(t, uid)
			return uid, old
		}},
		{name: "unknown user", calls: 1, prepare: func(*testing.T, string) (string, string) {
			return "00000000-0000-0000-0000-000000000000", "11111111-2222-3333-4444-555555555555"
		}},
		{name: "forbidden", want: approvals.Forbidden, calls: 1, liveAfter: true,
			text: "Entra ID does not allow tapbot to delete this user's Temporary Access Pass (privileged accounts need a higher admin role, or the app lacks UserAuthMethod-TAP.ReadWrite.All).",
			prepare: func(t *testing.T, uid string) (string, string) {
				id := create(t, uid)
				e.fake.FailNext(graphfake.OpDeletePass, http.StatusForbidden, 1, "")
				return uid, id
			}},
		{name: "503 forever", want: approvals.Unavailable, calls: 4, liveAfter: true, // one attempt plus the SDK's three retries
			text: "Microsoft Graph is throttling or unavailable; try again in a few minutes.",
			prepare: func(t *testing.T, uid string) (string, string) {
				id := create(t, uid)
				e.fake.FailNext(graphfake.OpDeletePass, http.StatusServiceUnavailable, 1000, "0")
				t.Cleanup(func() { e.fake.FailNext(graphfake.OpDeletePass, 0, 0, "") })
				return uid, id
			}},
		{name: "no pass given", want: approvals.Invalid, text: "No Temporary Access Pass was given.", liveAfter: true,
			prepare: func(t *testing.T, uid string) (string, string) { create(t, uid); return uid, "  " }},
		{name: "no user given", want: approvals.Invalid, text: "No Entra ID user was given.",
			prepare: func(*testing.T, string) (string, string) { return "", "x" }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := e.fake.AddUser(graphfake.User{UPN: fmt.Sprintf("delete%d@contoso.com", i), DisplayName: tc.name})
			userID, passID := tc.prepare(t, u.ID)
			before := e.fake.Calls(graphfake.OpDeletePass)
			err := e.note(c.DeletePass(ctx, userID, passID))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("DeletePass: %v", err)
				}
			} else if ae := wantCode(t, err, tc.want); ae.Message != tc.text {
				t.Errorf("message %q, want %q", ae.Message, tc.text)
			}
			if n := e.fake.Calls(graphfake.OpDeletePass) - before; n != tc.calls {
				t.Errorf("%d DELETE calls, want %d", n, tc.calls)
			}
			if live, err := c.HasActivePass(ctx, u.ID); e.note(err) != nil || live != tc.liveAfter {
				t.Errorf("HasActivePass after = %v (%v), want %v", live, err, tc.liveAfter)
			}
		})
	}
}

// TestPassLifecycle: the ID CreatePass returns is the one ListPasses shows and DeletePass removes,
// which is what cleanup after an interrupted approval relies on.
func TestPassLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()
	p := mustCreate(t, e, c, e.alice.ID, time.Hour, true)
	if p.ID == "" {
		t.Fatal("CreatePass returned no ID")
	}
	listed, err := c.ListPasses(ctx, e.alice.ID)
	if e.note(err) != nil || len(listed) != 1 || listed[0].ID != p.ID || !listed[0].StartsAt.Equal(p.StartsAt) || listed[0].Lifetime != p.Lifetime {
		t.Fatalf("ListPasses = %+v, %v; created %s", listed, err, p.ID)
	}
	if err := c.DeletePass(ctx, e.alice.ID, p.ID); e.note(err) != nil {
		t.Fatal(err)
	}
	if listed, err := c.ListPasses(ctx, e.alice.ID); e.note(err) != nil || len(listed) != 0 {
		t.Fatalf("after delete: %+v, %v", listed, err)
	}
	if issued := e.fake.Passes(e.alice.ID); len(issued) != 1 || !issued[0].Deleted || issued[0].ID != p.ID {
		t.Errorf("fake: %+v", issued)
	}
	if e.fake.SignIn(e.alice.ID, p.Code) {
		t.Error("the deleted pass still signs in")
	}
}

// TestConcurrencyLimit: a burst of approvals never puts more than Options.Concurrency requests
// in front of Graph at once, and every one of them still goes through.
func TestConcurrencyLimit(t *testing.T) {
	e := newEnvWith(t, graphfake.Options{Latency: 50 * time.Millisecond})
	const limit, callers = 8, 40
	obs := &observer{}
	c := e.clientWith(graph.Options{Concurrency: limit, Timeout: 30 * time.Second, Observe: obs.observe})
	ctx := context.Background()
	if _, err := c.PassPolicy(ctx); e.note(err) != nil { // the token, so only Graph is measured
		t.Fatal(err)
	}
	obs.take()
	users := make([]graphfake.User, callers)
	for i := range users {
		users[i] = e.fake.AddUser(graphfake.User{UPN: fmt.Sprintf("burst%d@contoso.com", i), DisplayName: "Burst"})
	}
	errs := make([]error, callers)
	passes := make([]approvals.Pass, callers)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			passes[i], errs[i] = c.CreatePass(ctx, users[i].ID, time.Hour, true)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if e.note(err) != nil {
			t.Errorf("caller %d: %v", i, err)
		} else if issued := e.fake.Passes(users[i].ID); len(issued) != 1 || issued[0].ID != passes[i].ID {
			t.Errorf("caller %d: fake has %+v for pass %s", i, len(issued), passes[i].ID)
		}
	}
	peak := e.fake.MaxInFlight("")
	t.Logf("peak in flight at the fake: %d", peak)
	if peak > limit || e.fake.MaxInFlight(graphfake.OpCreatePass) > limit {
		t.Errorf("Graph saw %d requests at once, limit %d", peak, limit)
	}
	if peak < 2 {
		t.Errorf("the calls never overlapped (peak %d), so the limit was not exercised", peak)
	}
	if got := obs.take(); len(got) != callers || strings.Count(strings.Join(got, ","), "create_pass 201") != callers {
		t.Errorf("observed %v, want %d × create_pass 201", got, callers)
	}
}

// TestAttemptTimeout: a Graph that hangs is given up on after AttemptTimeout, well inside the
// call's Timeout, and the hung attempt is not retried (a create may have gone through).
func TestAttemptTimeout(t *testing.T) {
	e := newEnv(t)
	const attempt, timeout = 200 * time.Millisecond, time.Second
	obs := &observer{}
	c := e.clientWith(graph.Options{AttemptTimeout: attempt, Timeout: timeout, Observe: obs.observe})
	ctx := context.Background()
	existing := mustCreate(t, e, c, e.bob.ID, time.Hour, false) // also gets the token
	cases := []struct {
		name, op, observed string
		call               func() error
	}{
		{"create", graphfake.OpCreatePass, "create_pass 0", func() error { _, err := c.CreatePass(ctx, e.alice.ID, time.Hour, false); return err }},
		{"list", graphfake.OpListPasses, "list_passes 0", func() error { _, err := c.ListPasses(ctx, e.bob.ID); return err }},
		{"delete", graphfake.OpDeletePass, "delete_pass 0", func() error { return c.DeletePass(ctx, e.bob.ID, existing.ID) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.fake.Hang(tc.op, time.Minute)
			t.Cleanup(func() { e.fake.Hang(tc.op, 0) })
			obs.take()
			before := e.fake.Calls(tc.op)
			start := time.Now()
			err := tc.call()
			elapsed := time.Since(start)
			ae := wantCode(t, e.note(err), approvals.Unavailable)
			if ae.Message != "Microsoft Graph did not answer in time; try again in a few minutes." {
				t.Errorf("message %q", ae.Message)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
			}
			if elapsed < attempt || elapsed >= timeout {
				t.Errorf("took %s; want between the attempt timeout %s and the call timeout %s", elapsed, attempt, timeout)
			}
			if n := e.fake.Calls(tc.op) - before; n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			if got := strings.Join(obs.take(), ", "); got != tc.observed {
				t.Errorf("observed %q, want %q", got, tc.observed)
			}
		})
	}
	if n := len(e.fake.Passes(e.alice.ID)); n != 0 {
		t.Errorf("%d passes created by the hung create", n)
	}
}

// TestTimeoutDefaultsToTwiceAttempt: with only AttemptTimeout set, the whole call (here spent
// waiting out a long Retry-After) ends at twice that, and the person hears it was throttling.
func TestTimeoutDefaultsToTwiceAttempt(t *testing.T) {
	e := newEnv(t)
	const attempt = 200 * time.Millisecond
	c := e.clientWith(graph.Options{AttemptTimeout: attempt})
	ctx := context.Background()
	if _, err := c.PassPolicy(ctx); e.note(err) != nil {
		t.Fatal(err)
	}
	e.fake.FailNext(graphfake.OpGetPolicy, http.StatusTooManyRequests, 100, "10")
	t.Cleanup(func() { e.fake.FailNext(graphfake.OpGetPolicy, 0, 0, "") })
	before := e.fake.Calls(graphfake.OpGetPolicy)
	start := time.Now()
	_, err := c.PassPolicy(ctx)
	elapsed := time.Since(start)
	ae := wantCode(t, e.note(err), approvals.Unavailable)
	if ae.Message != "Microsoft Graph is throttling or unavailable; try again in a few minutes." {
		t.Errorf("message %q", ae.Message)
	}
	if elapsed < 2*attempt || elapsed > 5*time.Second {
		t.Errorf("took %s; want about %s", elapsed, 2*attempt)
	}
	if n := e.fake.Calls(graphfake.OpGetPolicy) - before; n != 1 {
		t.Errorf("%d attempts, want 1 (the retry waits 10 s)", n)
	}
}

// TestObserve: one report per HTTP attempt, with stable operation names.
func TestObserve(t *testing.T) {
	e := newEnv(t)
	obs := &observer{}
	c := e.clientWith(graph.Options{Timeout: 10 * time.Second, Observe: obs.observe})
	ctx := context.Background()
	var passID string
	cases := []struct {
		name       string
		prepare    func(t *testing.T)
		call       func() error
		want       []string
		minElapsed time.Duration
	}{
		{name: "find by UPN", call: func() error { _, err := c.FindUser(ctx, "alice@contoso.com"); return err },
			want: []string{"find_user 200"}},
		{name: "find by mail falls back to a query", call: func() error { _, err := c.FindUser(ctx, "bob@contoso.com"); return err },
			want: []string{"find_user 404", "find_user 200"}},
		{name: "policy", call: func() error { _, err := c.PassPolicy(ctx); return err }, want: []string{"get_policy 200"}},
		{name: "policy forbidden", prepare: func(*testing.T) { e.fake.FailNext(graphfake.OpGetPolicy, http.StatusForbidden, 1, "") },
			call: func() error { _, err := c.PassPolicy(ctx); return err }, want: []string{"get_policy 403"}},
		{name: "create after Retry-After", prepare: func(*testing.T) { e.fake.FailNext(graphfake.OpCreatePass, http.StatusTooManyRequests, 1, "1") },
			call: func() error {
				p, err := c.CreatePass(ctx, e.alice.ID, time.Hour, false)
				passID = p.ID
				return err
			},
			want: []string{"create_pass 429", "create_pass 201"}, minElapsed: time.Second},
		{name: "list", call: func() error { _, err := c.ListPasses(ctx, e.alice.ID); return err }, want: []string{"list_passes 200"}},
		{name: "has active pass", call: func() error { _, err := c.HasActivePass(ctx, e.alice.ID); return err }, want: []string{"list_passes 200"}},
		{name: "delete", call: func() error { return c.DeletePass(ctx, e.alice.ID, passID) }, want: []string{"delete_pass 204"}},
		{name: "delete again", call: func() error { return c.DeletePass(ctx, e.alice.ID, passID) }, want: []string{"delete_pass 404"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare(t)
			}
			obs.take()
			start := time.Now()
			err := e.note(tc.call())
			if elapsed := time.Since(start); elapsed < tc.minElapsed {
				t.Errorf("took %s; Retry-After asked for %s", elapsed, tc.minElapsed)
			}
			if wantErr := strings.Contains(tc.name, "forbidden"); (err != nil) != wantErr {
				t.Errorf("err = %v", err)
			}
			if got, want := strings.Join(obs.take(), ", "), strings.Join(tc.want, ", "); got != want {
				t.Errorf("observed %q, want %q", got, want)
			}
		})
	}
}

// TestCallsWaitForAdmissionOutsideTheSDK: past twice Options.Concurrency, calls wait before they
// build a request at all, give up with the busy sentence when their caller does, and never reach
// Graph; the admitted ones are unaffected.
func TestCallsWaitForAdmissionOutsideTheSDK(t *testing.T) {
	e := newEnv(t)
	c := e.clientWith(graph.Options{Concurrency: 1, Timeout: 30 * time.Second})
	if _, err := c.PassPolicy(context.Background()); e.note(err) != nil {
		t.Fatal(err)
	}
	e.fake.Hang(graphfake.OpGetPolicy, time.Minute)
	t.Cleanup(func() { e.fake.Hang(graphfake.OpGetPolicy, 0) })

	holders, stopHolders := context.WithCancel(context.Background())
	defer stopHolders()
	held := make(chan error, 2)
	for i := 0; i < 2; i++ { // one on the wire, one admitted and queued at the transport
		go func() { _, err := c.PassPolicy(holders); held <- err }()
	}
	eventually(t, 10*time.Second, "one call on the wire and one queued behind it", func() bool { return c.Queued() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.FindUser(ctx, "alice@contoso.com"); done <- err }()
	eventually(t, 10*time.Second, "the third call to wait for admission", func() bool { return c.Admitting() == 1 })
	if q := c.Queued(); q != 1 {
		t.Errorf("%d calls queued at the transport, want 1: the third entered the SDK", q)
	}
	cancel()
	select {
	case err := <-done:
		ae := wantCode(t, e.note(err), approvals.Unavailable)
		if ae.Message != "tapbot is still waiting for Microsoft Graph to answer its other requests, so nothing was done; try again in a few minutes." {
			t.Errorf("message %q", ae.Message)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the waiting caller did not return within 2s of its context ending")
	}
	if n := e.fake.Calls(graphfake.OpGetUser); n != 0 {
		t.Errorf("a call that was never admitted reached Graph %d times", n)
	}
	stopHolders()
	for i := 0; i < 2; i++ {
		<-held
	}
	if a := c.Admitting(); a != 0 {
		t.Errorf("%d calls still waiting for admission", a)
	}
	// The slots were all given back: a new call goes straight through.
	e.fake.Hang(graphfake.OpGetPolicy, 0)
	if _, err := c.PassPolicy(context.Background()); e.note(err) != nil {
		t.Fatalf("after the burst: %v", err)
	}
}

// TestQueuedCallerGivesUp: a caller waiting for a free slot leaves as soon as its context ends,
// with a sentence for the user, and never reaches Graph.
func TestQueuedCallerGivesUp(t *testing.T) {
	e := newEnv(t)
	obs := &observer{}
	c := e.clientWith(graph.Options{Concurrency: 1, Timeout: 30 * time.Second, Observe: obs.observe})
	if _, err := c.PassPolicy(context.Background()); e.note(err) != nil {
		t.Fatal(err)
	}
	e.fake.Hang(graphfake.OpGetPolicy, time.Minute)
	t.Cleanup(func() { e.fake.Hang(graphfake.OpGetPolicy, 0) })

	holderCtx, stopHolder := context.WithCancel(context.Background())
	defer stopHolder()
	holderDone := make(chan error, 1)
	before := e.fake.Calls(graphfake.OpGetPolicy)
	go func() { _, err := c.PassPolicy(holderCtx); holderDone <- err }()
	eventually(t, 10*time.Second, "the first call to hold the only slot", func() bool { return e.fake.Calls(graphfake.OpGetPolicy) == before+1 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.FindUser(ctx, "alice@contoso.com"); done <- err }()
	eventually(t, 10*time.Second, "the second call to queue", func() bool { return c.Queued() == 1 })
	cancel()
	select {
	case err := <-done:
		ae := wantCode(t, e.note(err), approvals.Unavailable)
		if ae.Message != "tapbot is still waiting for Microsoft Graph to answer its other requests, so nothing was done; try again in a few minutes." {
			t.Errorf("message %q", ae.Message)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error does not wrap context.Canceled: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the queued caller did not return within 2s of its context ending")
	}
	if n := e.fake.Calls(graphfake.OpGetUser); n != 0 {
		t.Errorf("the queued call reached Graph %d times", n)
	}
	if q := c.Queued(); q != 0 {
		t.Errorf("%d callers still queued", q)
	}

	stopHolder()
	select {
	case err := <-holderDone:
		if e.note(err) == nil || approvals.ErrorCode(err) != "" {
			t.Errorf("a call its own caller cancelled: %v (want a plain error: nobody is waiting to read it)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging call did not end when its caller gave up")
	}
	if got := strings.Join(obs.take(), ", "); got != "get_policy 200, get_policy 0" {
		t.Errorf("observed %q", got)
	}
}

func TestManager(t *testing.T) {
	e := newEnv(t)
	obs := &observer{}
	c := e.clientWith(graph.Options{Timeout: 10 * time.Second, Observe: obs.observe})
	ctx := context.Background()
	unknown := "00000000-0000-0000-0000-000000000000"
	cases := []struct {
		name string
		// prepare gets a fresh user and returns the ID to ask about.
		prepare  func(t *testing.T, u graphfake.User) string
		want     graphfake.User // the manager, when wantCode is ""
		wantCode approvals.Code
		text     string // the start of the message, when wantCode is set
		observed string
	}{
		{name: "found", want: e.bob, observed: "get_manager 200",
			prepare: func(t *testing.T, u graphfake.User) string { e.fake.SetManager(u.ID, e.bob.ID); return u.ID }},
		{name: "found by UPN key", want: e.pat, observed: "get_manager 200",
			prepare: func(t *testing.T, u graphfake.User) string {
				e.fake.SetManager(u.ID, e.pat.ID)
				return " " + u.UPN + " "
			}},
		{name: "none", wantCode: approvals.NotFound, text: "Entra ID has no manager on record for the user with ID ", observed: "get_manager 404",
			prepare: func(t *testing.T, u graphfake.User) string { return u.ID }},
		{name: "manager removed", wantCode: approvals.NotFound, text: "Entra ID has no manager on record", observed: "get_manager 404",
			prepare: func(t *testing.T, u graphfake.User) string {
				e.fake.SetManager(u.ID, e.bob.ID)
				e.fake.SetManager(u.ID, "")
				return u.ID
			}},
		{name: "contact, not a user", wantCode: approvals.NotFound, text: "The manager on record in Entra ID for the user with ID ", observed: "get_manager 200",
			prepare: func(t *testing.T, u graphfake.User) string {
				e.fake.SetManager(u.ID, e.fake.AddContact("Outside Counsel"))
				return u.ID
			}},
		{name: "unknown user", wantCode: approvals.NotFound, text: "No Entra ID account found for the user with ID " + unknown, observed: "get_manager 404",
			prepare: func(*testing.T, graphfake.User) string { return unknown }},
		{name: "forbidden", wantCode: approvals.Forbidden, observed: "get_manager 403",
			text: "Entra ID does not allow tapbot to read users' managers (the app lacks User.Read.All).",
			prepare: func(t *testing.T, u graphfake.User) string {
				e.fake.SetManager(u.ID, e.bob.ID)
				e.fake.FailNext(graphfake.OpGetManager, http.StatusForbidden, 1, "")
				return u.ID
			}},
		{name: "503 forever", wantCode: approvals.Unavailable, text: "Microsoft Graph is throttling or unavailable",
			observed: "get_manager 503, get_manager 503, get_manager 503, get_manager 503", // one attempt plus the SDK's three retries
			prepare: func(t *testing.T, u graphfake.User) string {
				e.fake.SetManager(u.ID, e.bob.ID)
				e.fake.FailNext(graphfake.OpGetManager, http.StatusServiceUnavailable, 1000, "0")
				t.Cleanup(func() { e.fake.FailNext(graphfake.OpGetManager, 0, 0, "") })
				return u.ID
			}},
		{name: "no user given", wantCode: approvals.Invalid, text: "No Entra ID user was given.",
			prepare: func(*testing.T, graphfake.User) string { return "  " }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := e.fake.AddUser(graphfake.User{UPN: fmt.Sprintf("report%d@contoso.com", i), DisplayName: "Report"})
			who := tc.prepare(t, u)
			obs.take()
			got, err := c.Manager(ctx, who)
			e.note(err)
			if tc.wantCode != "" {
				if ae := wantCode(t, err, tc.wantCode); !strings.HasPrefix(ae.Message, tc.text) {
					t.Errorf("message %q, want it to start %q", ae.Message, tc.text)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				want := approvals.DirectoryUser{ID: tc.want.ID, UPN: tc.want.UPN, DisplayName: tc.want.DisplayName, Mail: tc.want.Mail}
				if got != want {
					t.Errorf("Manager = %+v, want %+v", got, want)
				}
			}
			if o := strings.Join(obs.take(), ", "); o != tc.observed {
				t.Errorf("observed %q, want %q", o, tc.observed)
			}
		})
	}
}

// protectedIDs makes n protected group IDs, more than one checkMemberGroups call takes.
func protectedIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i+1, i+1)
	}
	return ids
}

func TestPrivileges(t *testing.T) {
	protected := protectedIDs(25)
	cases := []struct {
		name      string
		opts      graphfake.Options
		protected []string
		// prepare sets up the tenant around the user the check is about.
		prepare    func(f *graphfake.Server, userID string)
		wantRoles  []string
		wantGroups []string
		observed   string
		checkCalls int // checkMemberGroups requests, each of at most 20 IDs
	}{
		{name: "nothing to check", prepare: func(*graphfake.Server, string) {},
			observed: "list_roles 200, list_role_groups 200"},
		{name: "no roles, in none of 25 protected groups", protected: protected,
			prepare: func(f *graphfake.Server, uid string) {
				f.AddGroup(protected[3], f.AddUser(graphfake.User{UPN: "other@contoso.com"}).ID)
				f.AddGroup("aaaaaaaa-0000-4000-8000-000000000001", uid) // a group nobody protects
			},
			observed: "list_roles 200, list_role_groups 200, check_groups 200, check_groups 200", checkCalls: 2},
		{name: "a role", protected: protected,
			prepare:   func(f *graphfake.Server, uid string) { f.AssignRole(uid, "Global Administrator") },
			wantRoles: []string{"Global Administrator"},
			observed:  "list_roles 200, list_role_groups 200, check_groups 200, check_groups 200", checkCalls: 2},
		{name: "a custom role twice and a built-in one",
			prepare: func(f *graphfake.Server, uid string) {
				f.AssignRole(uid, "Tier 0 Break Glass")
				f.AssignRole(uid, "Helpdesk Administrator")
				f.AssignRole(uid, "Tier 0 Break Glass")
			},
			wantRoles: []string{"Tier 0 Break Glass", "Helpdesk Administrator"},
			observed:  "list_roles 200, list_role_groups 200"},
		{name: "member of the 23rd of 25 protected groups", protected: protected,
			prepare:    func(f *graphfake.Server, uid string) { f.AddGroup(protected[22], uid) },
			wantGroups: []string{protected[22]},
			observed:   "list_roles 200, list_role_groups 200, check_groups 200, check_groups 200", checkCalls: 2},
		{name: "protected groups in another spelling, twice, with blanks",
			protected: []string{" " + strings.ToUpper(protected[0]) + " ", "", protected[0], protected[1]},
			prepare: func(f *graphfake.Server, uid string) {
				f.AddGroup(protected[0], uid)
				f.AddGroup(protected[1], uid)
			},
			wantGroups: []string{strings.ToUpper(protected[0]), protected[1]},
			observed:   "list_roles 200, list_role_groups 200, check_groups 200", checkCalls: 1},
		{name: "nested group membership", protected: protected[:2],
			prepare: func(f *graphfake.Server, uid string) {
				f.AddGroup(protected[1], "bbbbbbbb-0000-4000-8000-000000000001")
				f.AddGroup("bbbbbbbb-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002")
				f.AddGroup("bbbbbbbb-0000-4000-8000-000000000002", uid)
			},
			wantGroups: []string{protected[1]},
			observed:   "list_roles 200, list_role_groups 200, check_groups 200", checkCalls: 1},
		{name: "a role through a role-assignable group",
			prepare: func(f *graphfake.Server, uid string) {
				f.AssignRoleToGroup("cccccccc-0000-4000-8000-000000000001", "Privileged Authentication Administrator")
				f.AddGroup("cccccccc-0000-4000-8000-000000000001", uid)
				f.AssignRoleToGroup("cccccccc-0000-4000-8000-000000000002", "Exchange Administrator") // not the user's
			},
			wantRoles:  []string{"Privileged Authentication Administrator"},
			observed:   "list_roles 200, list_role_groups 200, check_groups 200, list_roles 200",
			checkCalls: 1},
		{name: "a protected role-assignable group and its role, checked once", protected: protected[:1],
			prepare: func(f *graphfake.Server, uid string) {
				f.AssignRole(uid, "User Administrator")
				f.AssignRoleToGroup(protected[0], "User Administrator")
				f.AddGroup(protected[0], uid)
			},
			wantRoles: []string{"User Administrator"}, wantGroups: []string{protected[0]},
			observed:   "list_roles 200, list_role_groups 200, check_groups 200, list_roles 200",
			checkCalls: 1},
		{name: "pages of roles and of role-assignable groups are all read", opts: graphfake.Options{PageSize: 1},
			prepare: func(f *graphfake.Server, uid string) {
				f.AssignRole(uid, "Security Administrator")
				f.AssignRole(uid, "Authentication Administrator")
				for i := 1; i <= 3; i++ {
					f.AssignRoleToGroup(fmt.Sprintf("dddddddd-0000-4000-8000-00000000000%d", i), "Global Reader")
				}
				f.AddGroup("dddddddd-0000-4000-8000-000000000003", uid)
			},
			wantRoles: []string{"Security Administrator", "Authentication Administrator", "Global Reader"},
			observed: "list_roles 200, list_roles 200, list_role_groups 200, list_role_groups 200, list_role_groups 200, " +
				"check_groups 200, list_roles 200",
			checkCalls: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, tc.opts) // a tenant of its own, so request counts are exact
			obs := &observer{}
			c := e.clientWith(graph.Options{Timeout: 10 * time.Second, Observe: obs.observe})
			u := e.fake.AddUser(graphfake.User{UPN: "target@contoso.com", DisplayName: "Target"})
			tc.prepare(e.fake, u.ID)
			got, err := c.Privileges(context.Background(), u.ID, tc.protected)
			if e.note(err) != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Roles) != fmt.Sprint(tc.wantRoles) || fmt.Sprint(got.Groups) != fmt.Sprint(tc.wantGroups) {
				t.Errorf("Privileges = roles %q groups %q, want roles %q groups %q", got.Roles, got.Groups, tc.wantRoles, tc.wantGroups)
			}
			if want := len(tc.wantRoles)+len(tc.wantGroups) > 0; got.Privileged() != want {
				t.Errorf("Privileged() = %v, want %v", got.Privileged(), want)
			}
			if o := strings.Join(obs.take(), ", "); o != tc.observed {
				t.Errorf("observed %q, want %q", o, tc.observed)
			}
			if n := e.fake.Calls(graphfake.OpCheckGroups); n != tc.checkCalls {
				t.Errorf("%d checkMemberGroups calls, want %d", n, tc.checkCalls)
			}
		})
	}
}

// TestPrivilegesFailures: when any part of the check fails, the caller gets an error that says
// why, never an answer that reads "not privileged".
func TestPrivilegesFailures(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()
	u := e.fake.AddUser(graphfake.User{UPN: "target@contoso.com", DisplayName: "Target"})
	// A role-assignable group the user is in, so every kind of request is made.
	e.fake.AssignRoleToGroup("eeeeeeee-0000-4000-8000-000000000001", "Global Administrator")
	e.fake.AddGroup("eeeeeeee-0000-4000-8000-000000000001", u.ID)
	protected := protectedIDs(3)
	if got, err := c.Privileges(ctx, u.ID, protected); e.note(err) != nil || fmt.Sprint(got.Roles) != "[Global Administrator]" {
		t.Fatalf("before any failure: %+v, %v", got, err)
	}

	cases := []struct {
		name   string
		op     string
		status int
		n      int // failures queued
		want   approvals.Code
		text   string
	}{
		{name: "roles forbidden", op: graphfake.OpListRoles, status: http.StatusForbidden, n: 1, want: approvals.Forbidden,
			text: "Entra ID does not allow tapbot to read directory role assignments, so it cannot tell whether this user is an admin (the app lacks RoleManagement.Read.Directory)."},
		{name: "role-assignable groups forbidden", op: graphfake.OpListRoleGroups, status: http.StatusForbidden, n: 1, want: approvals.Forbidden,
			text: "Entra ID does not allow tapbot to list role-assignable groups, so it cannot tell whether this user holds an admin role through a group (the app lacks GroupMember.Read.All)."},
		{name: "membership forbidden", op: graphfake.OpCheckGroups, status: http.StatusForbidden, n: 1, want: approvals.Forbidden,
			text: "Entra ID does not allow tapbot to check this user's group memberships (the app lacks GroupMember.Read.All)."},
		{name: "roles 503 forever", op: graphfake.OpListRoles, status: http.StatusServiceUnavailable, n: 1000, want: approvals.Unavailable,
			text: "Microsoft Graph is throttling or unavailable; try again in a few minutes."},
		{name: "role-assignable groups 503 forever", op: graphfake.OpListRoleGroups, status: http.StatusServiceUnavailable, n: 1000, want: approvals.Unavailable,
			text: "Microsoft Graph is throttling or unavailable; try again in a few minutes."},
		{name: "membership 503 forever", op: graphfake.OpCheckGroups, status: http.StatusServiceUnavailable, n: 1000, want: approvals.Unavailable,
			text: "Microsoft Graph is throttling or unavailable; try again in a few minutes."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { e.fake.FailNext(tc.op, 0, 0, "") })
			before := e.fake.Calls(tc.op)
			e.fake.FailNext(tc.op, tc.status, tc.n, "0")
			got, err := c.Privileges(ctx, u.ID, protected)
			e.note(err)
			if ae := wantCode(t, err, tc.want); ae.Message != tc.text {
				t.Errorf("message %q, want %q", ae.Message, tc.text)
			}
			if got.Privileged() || got.Roles != nil || got.Groups != nil {
				t.Errorf("a failed check still answered %+v", got)
			}
			if tc.status == http.StatusServiceUnavailable {
				if n := e.fake.Calls(tc.op) - before; n != 4 { // one attempt plus the SDK's three retries
					t.Errorf("%d attempts, want 4", n)
				}
			}
		})
	}

	t.Run("hang", func(t *testing.T) {
		hc := e.client(time.Second)
		if _, err := hc.Privileges(ctx, u.ID, protected); e.note(err) != nil { // the token, so only Graph hangs below
			t.Fatal(err)
		}
		e.fake.Hang(graphfake.OpCheckGroups, time.Minute)
		t.Cleanup(func() { e.fake.Hang(graphfake.OpCheckGroups, 0) })
		start := time.Now()
		_, err := hc.Privileges(ctx, u.ID, protected)
		ae := wantCode(t, e.note(err), approvals.Unavailable)
		if ae.Message != "Microsoft Graph did not answer in time; try again in a few minutes." {
			t.Errorf("message %q", ae.Message)
		}
		if elapsed := time.Since(start); elapsed > 6*time.Second {
			t.Errorf("took %s with a 1s timeout for the whole check", elapsed)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := c.Privileges(ctx, "00000000-0000-0000-0000-000000000000", protected)
		if ae := wantCode(t, e.note(err), approvals.NotFound); ae.Message != "No Entra ID account found for the user with ID 00000000-0000-0000-0000-000000000000." {
			t.Errorf("message %q", ae.Message)
		}
	})
	t.Run("malformed protected group", func(t *testing.T) {
		before := e.fake.Calls(graphfake.OpListRoles)
		_, err := c.Privileges(ctx, u.ID, []string{protected[0], "Tier0-Admins"})
		if ae := wantCode(t, e.note(err), approvals.Invalid); ae.Message != `The protected group ID "Tier0-Admins" is not an Entra ID object ID.` {
			t.Errorf("message %q", ae.Message)
		}
		if e.fake.Calls(graphfake.OpListRoles) != before {
			t.Error("Graph was called with a malformed group ID")
		}
	})
	t.Run("no user given", func(t *testing.T) {
		_, err := c.Privileges(ctx, " ", protected)
		wantCode(t, e.note(err), approvals.Invalid)
	})
}
