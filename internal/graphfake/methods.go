package graphfake

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Method types Graph lists under /users/{id}/authentication/methods, without the
// "#microsoft.graph." namespace.
const (
	MethodFIDO2              = "fido2AuthenticationMethod" // security keys and passkeys
	MethodWindowsHello       = "windowsHelloForBusinessAuthenticationMethod"
	MethodAuthenticator      = "microsoftAuthenticatorAuthenticationMethod"
	MethodPlatformCredential = "platformCredentialAuthenticationMethod" // macOS Platform SSO
	MethodPhone              = "phoneAuthenticationMethod"
	MethodEmail              = "emailAuthenticationMethod"
	MethodSoftwareOath       = "softwareOathAuthenticationMethod"
)

// passwordMethodID is the fixed ID Entra ID gives every user's password method.
const passwordMethodID = "28c10230-6103-485e-b985-444c60001490"

// Method is a sign-in method a user registered, as Graph lists it.
type Method struct {
	ID   string // a fresh GUID when empty
	Type string // one of the Method* constants
	// DisplayName is the key's, device's or phone's name, for the types that have one.
	DisplayName string
	// CreatedAt is when it was registered; zero means the fake's now. Set NoCreatedTime to
	// answer null, as Graph does for Authenticator set up for notifications only.
	CreatedAt     time.Time
	NoCreatedTime bool
}

// AddMethod registers a sign-in method for the user (by object ID), as the person would at
// https://aka.ms/mysecurityinfo, and returns it with its ID and time filled in. Graph lists it
// from then on, after the password and any live Temporary Access Pass.
func (s *Server) AddMethod(userID string, m Method) Method {
	if m.ID == "" {
		m.ID = newGUID()
	}
	if m.CreatedAt.IsZero() && !m.NoCreatedTime {
		m.CreatedAt = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.methods == nil {
		s.methods = map[string][]Method{}
	}
	key := strings.ToLower(userID)
	s.methods[key] = append(s.methods[key], m)
	return m
}

// Methods returns the methods AddMethod registered for the user.
func (s *Server) Methods(userID string) []Method {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Method(nil), s.methods[strings.ToLower(userID)]...)
}

func (s *Server) listMethods(w http.ResponseWriter, r *http.Request, key string) {
	u, ok := s.lockUser(w, r, key)
	if !ok {
		return
	}
	value := []any{map[string]any{
		"@odata.type":     "#microsoft.graph.passwordAuthenticationMethod",
		"id":              passwordMethodID,
		"password":        nil,
		"createdDateTime": nil,
	}}
	if p := s.livePassLocked(u.ID); p != nil {
		value = append(value, s.tapJSONLocked(p, false))
	}
	for _, m := range s.methods[strings.ToLower(u.ID)] {
		value = append(value, methodJSON(m))
	}
	s.mu.Unlock()
	s.writeGraphJSON(w, r, http.StatusOK, map[string]any{
		"@odata.context": fmt.Sprintf("%s#users('%s')/authentication/methods", metadataURL, url.PathEscape(u.ID)),
		"value":          value,
	})
}

// methodJSON renders a method with the properties Graph v1.0 gives its type.
func methodJSON(m Method) map[string]any {
	j := map[string]any{"@odata.type": "#microsoft.graph." + m.Type, "id": m.ID}
	created := any(nil)
	if !m.NoCreatedTime {
		created = graphTime(m.CreatedAt)
	}
	switch m.Type {
	case MethodFIDO2:
		j["displayName"], j["createdDateTime"] = m.DisplayName, created
		j["aaGuid"], j["model"], j["attestationLevel"], j["attestationCertificates"] = "cb69481e-8ff7-4039-93ec-0a2729a154a8", m.DisplayName, "attested", []any{}
	case MethodWindowsHello:
		j["displayName"], j["createdDateTime"], j["keyStrength"] = m.DisplayName, created, "normal"
	case MethodAuthenticator:
		j["displayName"], j["createdDateTime"], j["deviceTag"], j["phoneAppVersion"] = m.DisplayName, created, "SoftwareTokenActivated", "6.8.7"
	case MethodPlatformCredential:
		j["displayName"], j["createdDateTime"], j["keyStrength"], j["platform"] = m.DisplayName, created, "normal", "macOS"
	case MethodPhone:
		j["phoneNumber"], j["phoneType"], j["smsSignInState"] = "+1 5555550100", "mobile", "notAllowedByPolicy"
	case MethodEmail:
		j["emailAddress"] = "someone@example.net"
	case MethodSoftwareOath:
		j["secretKey"] = nil
	default:
		j["createdDateTime"] = created
	}
	return j
}
