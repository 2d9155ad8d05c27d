package graphfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// graphScope is the only scope the fake issues tokens for: tapbot calls Microsoft Graph with the
// application's static permissions.
const graphScope = "https://graph.microsoft.com/.default"

// serveDiscovery answers the OpenID Connect metadata request MSAL makes for a custom authority
// when instance discovery is disabled. MSAL checks that the issuer's scheme and host match the
// authority, so every URL is built from the Host the client used.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request, tenant string) {
	if !s.begin(r, OpDiscovery, false) {
		return
	}
	if r.Method != http.MethodGet {
		s.violation("%s on the OpenID configuration endpoint", r.Method)
		writeEntraError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts GET requests.", "")
		return
	}
	if f := s.takeFailure(OpDiscovery); f != nil {
		writeEntraFailure(w, f)
		return
	}
	if !strings.EqualFold(tenant, s.tenantID) {
		writeEntraError(w, http.StatusBadRequest, "invalid_tenant", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant), "")
		return
	}
	base := "https://" + r.Host + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              "https://" + r.Host + "/" + tenant + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

// serveToken implements the client-credentials grant with a client secret, which is what
// azidentity's ClientSecretCredential (through MSAL's confidential client) sends.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if !s.begin(r, OpToken, false) {
		return
	}
	if r.Method != http.MethodPost {
		s.violation("%s on the token endpoint", r.Method)
		writeEntraError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.", "")
		return
	}
	if f := s.takeFailure(OpToken); f != nil {
		writeEntraFailure(w, f)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.violation("unparsable token request: %v", err)
		writeEntraError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", "")
		return
	}
	if r.URL.RawQuery != "" && (r.URL.Query().Has("client_secret")) {
		s.violation("client secret sent in the token request URL")
	}
	if !strings.EqualFold(tenant, s.tenantID) {
		writeEntraError(w, http.StatusBadRequest, "invalid_request", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant), "")
		return
	}
	form := r.PostForm
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		s.violation("token request with grant_type %q", gt)
		writeEntraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.", "")
		return
	}
	if form.Get("client_id") != s.clientID {
		writeEntraError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", form.Get("client_id"), tenant), "")
		return
	}
	switch secret := form.Get("client_secret"); {
	case secret == "" && form.Get("client_assertion") != "":
		writeEntraError(w, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.", "")
		return
	case secret == "":
		writeEntraError(w, http.StatusUnauthorized, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.", "")
		return
	case secret != s.clientSecret:
		writeEntraError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.clientID), "")
		return
	}
	if !hasScope(form.Get("scope"), graphScope) {
		s.violation("token request for scope %q instead of %s", form.Get("scope"), graphScope)
		writeEntraError(w, http.StatusBadRequest, "invalid_scope", 1002012,
			fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", form.Get("scope")), "")
		return
	}
	if c := form.Get("claims"); c != "" && !json.Valid([]byte(c)) {
		s.violation("token request with invalid claims JSON")
	}
	const lifetime = time.Hour
	tok := s.issueToken(lifetime)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     int(lifetime.Seconds()) - 1,
		"ext_expires_in": int(lifetime.Seconds()) - 1,
		"access_token":   tok,
	})
}

func hasScope(scopes, want string) bool {
	for _, sc := range strings.Fields(scopes) {
		if strings.EqualFold(sc, want) {
			return true
		}
	}
	return false
}

// validToken reports whether the request carries a bearer token this fake issued and that has not
// expired.
func (s *Server) validToken(r *http.Request) bool {
	_, ok := s.tokenRoles(r)
	return ok
}

func writeEntraFailure(w http.ResponseWriter, f *failure) {
	code, num, desc := "temporarily_unavailable", 50196, "The server is temporarily unable to handle the request."
	switch f.status {
	case http.StatusTooManyRequests:
		code, num, desc = "temporarily_unavailable", 50196, "The server terminated an operation because it encountered a client request loop."
	case http.StatusUnauthorized:
		code, num, desc = "invalid_client", 7000222, "The provided client secret keys for app are expired."
	case http.StatusBadRequest:
		code, num, desc = "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
	case http.StatusForbidden:
		code, num, desc = "unauthorized_client", 700016, "Application was not found in the directory."
	}
	writeEntraError(w, f.status, code, num, desc, f.retryAfter)
}

// writeEntraError writes an AADSTS error the way login.microsoftonline.com does.
func writeEntraError(w http.ResponseWriter, status int, code string, aadsts int, desc, retryAfter string) {
	trace, corr := newGUID(), newGUID()
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, desc, trace, corr, ts),
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
