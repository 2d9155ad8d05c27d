package graphfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultRoles are the application permissions the fake's app registration holds unless
// Options.Roles or SetRoles say otherwise: the least privileged set that allows every call the
// fake implements, which is what tapbot's README asks an admin to grant.
var DefaultRoles = []string{
	"User.Read.All",
	"UserAuthMethod-TAP.ReadWrite.All",
	"Policy.Read.AuthenticationMethod",
	"RoleManagement.Read.Directory",
	"GroupMember.Read.All",
	"UserAuthenticationMethod.Read.All",
	"AuditLog.Read.All",
}

// tokenHeader is the JOSE header of every access token. Entra ID signs with RS256 and names its
// key; the fake's tokens are not really signed (nothing may verify them but the fake, which looks
// them up), so the key ID says whose they are.
const tokenHeader = `{"typ":"JWT","alg":"RS256","kid":"graphfake"}`

// TokenPrefix begins every access token the fake issues (the encoded header and its dot), so a
// test can look for leaked tokens without knowing them.
var TokenPrefix = base64.RawURLEncoding.EncodeToString([]byte(tokenHeader)) + "."

// opRoles lists, per Graph operation, the application permissions of which a token needs at
// least one: the least privileged first, then the broader ones Microsoft Graph's permission
// reference also accepts for the call.
var opRoles = map[string][]string{
	OpGetUser:        {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	OpFindUsers:      {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	OpListHires:      {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	OpGetManager:     {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	OpListPasses:     {"UserAuthMethod-TAP.Read.All", "UserAuthMethod-TAP.ReadWrite.All", "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"},
	OpCreatePass:     {"UserAuthMethod-TAP.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"},
	OpDeletePass:     {"UserAuthMethod-TAP.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"},
	OpGetPolicy:      {"Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod"},
	OpListRoles:      {"RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory", "Directory.Read.All", "Directory.ReadWrite.All"},
	OpListRoleGroups: {"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	OpCheckGroups:    {"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	OpListMethods:    {"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"},
	// Microsoft's permission table for List directoryAudits names Directory.Read.All beside
	// AuditLog.Read.All.
	OpListAudits: {"AuditLog.Read.All", "Directory.Read.All"},
}

// issuedToken is what the fake remembers about an access token it issued.
type issuedToken struct {
	expires time.Time // on the real clock, as MSAL uses
	roles   []string
	appID   string // the appid claim: which app registration the token is for
}

// SetRoles replaces the application permissions granted to the app, as an admin granting or
// revoking consent would. Like Entra ID, it changes only tokens issued afterwards: a client that
// cached a token keeps its old roles until it gets a new one.
func (s *Server) SetRoles(roles ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles = append([]string(nil), roles...)
}

// Roles returns the application permissions new tokens carry.
func (s *Server) Roles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.roles...)
}

// issueToken mints an app-only access token shaped like Entra ID's: a JWT (header.payload.
// signature, base64url) whose claims carry the tenant, the client and the roles granted now. The
// signature is random bytes: the fake recognises its tokens by looking them up.
func (s *Server) issueToken(lifetime time.Duration) string {
	s.mu.Lock()
	roles := append([]string(nil), s.roles...)
	s.mu.Unlock()
	now := time.Now()
	oid := newGUID()
	claims := map[string]any{
		"aud":   "https://graph.microsoft.com",
		"iss":   "https://sts.windows.net/" + s.tenantID + "/",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(lifetime).Unix(),
		"appid": s.clientID,
		"idtyp": "app",
		"oid":   oid,
		"sub":   oid,
		"tid":   s.tenantID,
		"uti":   randomB64(16),
		"ver":   "1.0",
	}
	if len(roles) > 0 {
		claims["roles"] = roles // Entra ID leaves the claim out when nothing is granted
	}
	payload, _ := json.Marshal(claims)
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(payload) + "." + randomB64(256)
	s.mu.Lock()
	s.tokens[tok] = issuedToken{expires: now.Add(lifetime), roles: roles, appID: s.clientID}
	s.mu.Unlock()
	return tok
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenRoles returns the roles of the request's bearer token, and whether it carries one this
// fake issued and that has not expired.
func (s *Server) tokenRoles(r *http.Request) ([]string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[strings.TrimSpace(h[len(prefix):])]
	if !ok || !time.Now().Before(t.expires) {
		return nil, false
	}
	return t.roles, true
}

// tokenApp returns the appid of the request's bearer token, or "" without a valid one.
func (s *Server) tokenApp(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[strings.TrimSpace(h[len(prefix):])].appID
}

// allowed reports whether a token with roles may do op.
func allowed(op string, roles []string) bool {
	for _, r := range opRoles[op] {
		if slices.ContainsFunc(roles, func(have string) bool { return strings.EqualFold(have, r) }) {
			return true
		}
	}
	return false
}
