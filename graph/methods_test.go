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

func TestAuthMethods(t *testing.T) {
	e := newEnv(t)
	obs := &observer{}
	c := e.clientWith(graph.Options{Timeout: 10 * time.Second, Observe: obs.observe})
	ctx := context.Background()

	got, err := c.AuthMethods(ctx, e.alice.ID)
	if e.note(err) != nil || len(got) != 1 || got[0].Kind != approvals.MethodPassword {
		t.Fatalf("a new user's methods = %+v, %v; want just the password", got, err)
	}
	mustCreate(t, e, c, e.alice.ID, time.Hour, true)
	registered := e.clock.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	key := e.fake.AddMethod(e.alice.ID, graphfake.Method{Type: graphfake.MethodFIDO2, DisplayName: "YubiKey 5 NFC", CreatedAt: registered})
	app := e.fake.AddMethod(e.alice.ID, graphfake.Method{Type: graphfake.MethodAuthenticator, DisplayName: "Alice's iPhone", NoCreatedTime: true})
	hello := e.fake.AddMethod(e.alice.ID, graphfake.Method{Type: graphfake.MethodWindowsHello, DisplayName: "LAPTOP-42", CreatedAt: registered})
	mac := e.fake.AddMethod(e.alice.ID, graphfake.Method{Type: graphfake.MethodPlatformCredential, DisplayName: "Alice's MacBook", CreatedAt: registered})
	e.fake.AddMethod(e.alice.ID, graphfake.Method{Type: graphfake.MethodPhone})

	got, err = c.AuthMethods(ctx, e.alice.ID)
	if e.note(err) != nil {
		t.Fatal(err)
	}
	want := []approvals.AuthMethod{
		{Kind: approvals.MethodPassword},
		{Kind: approvals.MethodTemporaryPass},
		{ID: key.ID, Kind: approvals.MethodFIDO2, Name: "YubiKey 5 NFC", CreatedAt: registered},
		{ID: app.ID, Kind: approvals.MethodAuthenticator, Name: "Alice's iPhone"},
		{ID: hello.ID, Kind: approvals.MethodWindowsHello, Name: "LAPTOP-42", CreatedAt: registered},
		{ID: mac.ID, Kind: approvals.MethodPlatformCredential, Name: "Alice's MacBook", CreatedAt: registered},
		{Kind: approvals.MethodPhone},
	}
	if len(got) != len(want) {
		t.Fatalf("AuthMethods = %+v, want %d methods", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		sameTime := g.CreatedAt.Equal(w.CreatedAt) || w.Kind == approvals.MethodTemporaryPass // the pass's own time
		if g.Kind != w.Kind || (w.ID != "" && g.ID != w.ID) || g.Name != w.Name || !sameTime {
			t.Errorf("method %d = %+v, want %+v", i, g, w)
		}
		if g.ID == "" {
			t.Errorf("method %d has no ID", i)
		}
	}
	strong := 0
	for _, m := range got {
		if m.Kind.Strong() {
			strong++
		}
	}
	if strong != 4 {
		t.Errorf("%d strong methods, want 4 (key, Authenticator, Windows Hello, Mac)", strong)
	}
	if ops := obs.take(); len(ops) == 0 || ops[len(ops)-1] != "list_methods 200" {
		t.Errorf("observed %v, want list_methods 200 last", ops)
	}

	failures := []struct {
		name    string
		prepare func()
		userID  string
		want    approvals.Code
		text    string
	}{
		{"no user given", func() {}, "", approvals.Invalid, "No Entra ID user was given."},
		{"unknown user", func() {}, "00000000-0000-0000-0000-000000000000", approvals.NotFound, "No Entra ID account found"},
		{"not granted", func() { e.fake.FailNext(graphfake.OpListMethods, http.StatusForbidden, 1, "") }, e.alice.ID,
			approvals.Forbidden, "UserAuthenticationMethod.Read.All"},
		{"throttled", func() { e.fake.FailNext(graphfake.OpListMethods, http.StatusServiceUnavailable, 10, "0") }, e.alice.ID,
			approvals.Unavailable, "try again"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare()
			_, err := c.AuthMethods(ctx, tc.userID)
			if ae := wantCode(t, e.note(err), tc.want); !strings.Contains(ae.Message, tc.text) {
				t.Errorf("message %q does not contain %q", ae.Message, tc.text)
			}
			e.fake.FailNext(graphfake.OpListMethods, 0, 0, "")
		})
	}
}

// TestAuthMethodsNeedsItsPermission checks the fake refuses the list without
// UserAuthenticationMethod.Read.All, as Graph does, and that the refusal names the permission.
func TestAuthMethodsNeedsItsPermission(t *testing.T) {
	e := newEnvWith(t, graphfake.Options{Roles: []string{"User.Read.All", "UserAuthMethod-TAP.ReadWrite.All"}})
	c := e.client(10 * time.Second)
	_, err := c.AuthMethods(context.Background(), e.alice.ID)
	if ae := wantCode(t, e.note(err), approvals.Forbidden); !strings.Contains(ae.Message, "UserAuthenticationMethod.Read.All") {
		t.Fatalf("refusal %q does not name the permission", ae.Message)
	}
}
