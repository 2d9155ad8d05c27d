package graphfake_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/internal/graphfake"
)

// claims decodes a token's JWT payload without verifying anything, as a client reading its own
// token's roles does.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d dot-separated parts, want header.payload.signature", len(parts))
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("header is not base64url: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil || h["typ"] != "JWT" || h["alg"] == nil {
		t.Fatalf("header %s: %v", header, err)
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || parts[2] == "" {
		t.Fatalf("signature is not base64url: %v", err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("payload is not base64url: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	return c
}

func roles(c map[string]any) []string {
	var out []string
	list, _ := c["roles"].([]any)
	for _, r := range list {
		out = append(out, r.(string))
	}
	return out
}

func TestTokenIsAJWTWithTheGrantedRoles(t *testing.T) {
	h := newHarness(t)
	tok := h.token()
	if !strings.HasPrefix(tok, graphfake.TokenPrefix) {
		t.Fatalf("token does not start with TokenPrefix")
	}
	c := claims(t, tok)
	if got := roles(c); !slices.Equal(got, graphfake.DefaultRoles) {
		t.Fatalf("roles = %v, want %v", got, graphfake.DefaultRoles)
	}
	if c["tid"] != h.s.TenantID() || c["appid"] != h.s.ClientID() || c["idtyp"] != "app" || c["exp"] == nil {
		t.Fatalf("claims = %v", c)
	}
	if code, _, body := h.graph(http.MethodGet, "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass", tok, nil, nil); code != 200 {
		t.Fatalf("the JWT is not accepted: %d %v", code, body)
	}
	if h.token() == tok {
		t.Fatal("two token requests got the same token")
	}
	if v := h.s.Violations(); len(v) > 0 {
		t.Fatalf("violations %q", v)
	}
}

// TestMissingPermissionIsRefused: a call that no granted permission allows gets Graph's 403, a
// broader permission stands in for the least privileged one, and only tokens issued after a
// change of consent carry it.
func TestMissingPermissionIsRefused(t *testing.T) {
	h := newHarnessWith(t, graphfake.Options{Roles: []string{"User.Read.All"}})
	u := h.s.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	policy := "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
	roleAssignments := "/roleManagement/directory/roleAssignments?" + url.Values{"$filter": {"principalId eq '" + u.ID + "'"}}.Encode()

	tok := h.token()
	if got := roles(claims(t, tok)); !slices.Equal(got, []string{"User.Read.All"}) {
		t.Fatalf("roles = %v", got)
	}
	if code, _, body := h.graph(http.MethodGet, "/users/"+u.ID, tok, nil, nil); code != 200 {
		t.Fatalf("getUser with User.Read.All: %d %v", code, body)
	}
	if code, _, body := h.graph(http.MethodGet, policy, tok, nil, nil); code != 403 || errorCode(body) != "accessDenied" {
		t.Fatalf("policy without Policy.Read.AuthenticationMethod: %d %v", code, body)
	}
	if code, _, body := h.graph(http.MethodGet, roleAssignments, tok, nil, nil); code != 403 || errorCode(body) != "Authorization_RequestDenied" {
		t.Fatalf("role assignments without RoleManagement.Read.Directory: %d %v", code, body)
	}

	h.s.SetRoles("Directory.Read.All", "Policy.ReadWrite.AuthenticationMethod")
	if code, _, _ := h.graph(http.MethodGet, policy, tok, nil, nil); code != 403 {
		t.Fatalf("a token issued before the grant still reads the policy: %d", code)
	}
	tok = h.token()
	for _, path := range []string{policy, roleAssignments, "/users/" + u.ID} {
		if code, _, body := h.graph(http.MethodGet, path, tok, nil, nil); code != 200 {
			t.Fatalf("%s with broader permissions: %d %v", path, code, body)
		}
	}
	if code, _, body := h.graph(http.MethodPost, "/users/"+u.ID+"/authentication/temporaryAccessPassMethods", tok,
		[]byte(`{"lifetimeInMinutes":60}`), map[string]string{"Content-Type": jsonType}); code != 403 {
		t.Fatalf("create a pass with read permissions only: %d %v", code, body)
	}

	h.s.SetRoles()
	tok = h.token()
	if _, present := claims(t, tok)["roles"]; present || len(h.s.Roles()) != 0 {
		t.Fatal("a token with no permission granted has a roles claim")
	}
	if code, _, _ := h.graph(http.MethodGet, "/users/"+u.ID, tok, nil, nil); code != 403 {
		t.Fatalf("getUser with no permission: %d", code)
	}
	if v := h.s.Violations(); len(v) > 0 {
		t.Fatalf("a refused permission is the tenant's setting, not a violation: %q", v)
	}
}
