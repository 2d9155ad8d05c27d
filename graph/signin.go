package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// SignInKind says why Entra ID gave tapbot no token.
type SignInKind int

const (
	// NoCredential: none of the credential kinds DefaultAzureCredential tries had what it needs
	// (no AZURE_* variables, no managed identity, no signed-in Azure CLI).
	NoCredential SignInKind = iota + 1
	// Unreachable: a token request got no answer (DNS, a refused connection, a firewall, an
	// untrusted TLS certificate, a timeout). No variable is wrong, unless it names the wrong host.
	Unreachable
	// Refused: Entra ID answered and refused the credential, with an AADSTS code.
	Refused
	// Failed is anything else, such as Entra ID answering with a server error.
	Failed
)

// SignInError is why tapbot got no Microsoft Graph token, as one line without any secret, with
// the variable to fix and what to do. It replaces azidentity's error, whose chain of every
// credential it tried runs to some 850 characters; that error is still there for errors.As
// (Unwrap), with the client secret redacted.
type SignInError struct {
	Kind SignInKind
	// Var names the variable (or variables) to fix; "" when none is at fault.
	Var string
	// Host is the host that could not be reached (Unreachable) or that answered (Refused, Failed).
	Host string
	// Code is Entra ID's error code, such as AADSTS7000215 (Refused).
	Code string
	// Problem says what went wrong and Fix what to do, each one sentence.
	Problem, Fix string

	err error
}

func (e *SignInError) Error() string { return e.Problem }
func (e *SignInError) Unwrap() error { return e.err }

// attemptsKey carries, in a token request's context, where its HTTP attempts went unanswered.
type attemptsKey struct{}

// attempts records the transport failures of one GetToken call: azidentity flattens them into
// text, and only the transport knows which host did not answer and why.
type attempts struct {
	mu       sync.Mutex
	failures []transportFailure
}

type transportFailure struct {
	host string
	err  error
}

func (a *attempts) last() (transportFailure, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.failures) == 0 {
		return transportFailure{}, false
	}
	return a.failures[len(a.failures)-1], true
}

// reachability is an azcore per-retry policy of the credential's pipeline: it records each
// attempt that got no HTTP answer in the attempts of the request's context.
type reachability struct{}

func (reachability) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil {
		if a, ok := req.Raw().Context().Value(attemptsKey{}).(*attempts); ok {
			a.mu.Lock()
			a.failures = append(a.failures, transportFailure{host: req.Raw().URL.Host, err: err})
			a.mu.Unlock()
		}
	}
	return resp, err
}

// triedRE finds each credential a chain tried in azidentity's message: a line with one tab, the
// credential's type and either its reason or "authentication failed".
var triedRE = regexp.MustCompile(`(?m)^\t([A-Za-z]+Credential)(?:: | authentication failed\.?)[ \t]*(.*)$`)

// aadstsRE finds Entra ID's error code and description in a message, for answers whose body is gone.
var aadstsRE = regexp.MustCompile(`AADSTS(\d+): ([^\n"]*?)(?: Trace ID:|"|$)`)

// signInError turns azidentity's error for a token request into a SignInError. err is already
// redacted; failed are the attempts that got no answer.
func signInError(err error, failed *attempts) *SignInError {
	text := err.Error()
	tried := triedRE.FindAllStringSubmatch(text, -1)
	var authFailed *azidentity.AuthenticationFailedError
	isAuthFailed := errors.As(err, &authFailed)
	const allVars = "AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"

	// Every credential kind lacked something: nothing was sent to Entra ID.
	if !isAuthFailed && strings.Contains(text, "failed to acquire a token") {
		return &SignInError{Kind: NoCredential, Var: allVars, err: err,
			Problem: "no Azure credential found: " + summarize(tried),
			Fix:     "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET of tapbot's app registration (or a certificate, workload or managed identity; see README.md)"}
	}
	kind, before := "", ""
	if len(tried) > 0 {
		kind = tried[len(tried)-1][1]
	}
	if len(tried) > 1 {
		// The chain went past credential kinds that lacked something before one failed.
		before = ", after " + summarize(tried[:len(tried)-1])
	}
	// Entra ID answered.
	if isAuthFailed && authFailed.RawResponse != nil {
		resp := authFailed.RawResponse
		host := ""
		if resp.Request != nil {
			host = resp.Request.URL.Host
		}
		if kind == "ManagedIdentityCredential" {
			// Not Entra ID: the host's managed identity endpoint (IMDS at 169.254.169.254, or
			// App Service's), or whatever answers in its place.
			return &SignInError{Kind: Refused, Host: host, Var: allVars, err: err,
				Problem: fmt.Sprintf("the managed identity endpoint at %s refused the token request (%s)%s", host, resp.Status, before),
				Fix:     "to sign in with a client secret set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; to use a managed identity, assign one to this host (and set AZURE_CLIENT_ID to a user-assigned one's client ID)"}
		}
		if resp.StatusCode >= 500 {
			return &SignInError{Kind: Failed, Host: host, err: err,
				Problem: fmt.Sprintf("Entra ID at %s answered %s to the token request", host, resp.Status),
				Fix:     "Entra ID is having trouble, not tapbot's configuration: try again in a few minutes (https://azure.status.microsoft)"}
		}
		code, desc, oauth := entraError(resp, text)
		e := &SignInError{Kind: Refused, Host: host, Code: code, err: err}
		e.Var, e.Fix = refusalFix(code, kind)
		e.Problem = "Entra ID refused " + credentialName(kind)
		if code != "" {
			e.Problem += ": " + code + ": " + strings.TrimSuffix(desc, ".")
			if oauth != "" {
				e.Problem += " (" + oauth + ")"
			}
		} else {
			e.Problem += fmt.Sprintf(" (%s)", resp.Status)
		}
		e.Problem += before
		return e
	}
	// A request got no answer.
	if f, ok := failed.last(); ok {
		why, fix := unreachable(f.err)
		return &SignInError{Kind: Unreachable, Host: f.host, err: err,
			Problem: "cannot reach Entra ID at " + f.host + ": " + why + before, Fix: fix}
	}
	reason := text
	if len(tried) > 0 {
		reason = kind + ": " + shortReason(kind, tried[len(tried)-1][2])
	}
	return &SignInError{Kind: Failed, Var: allVars, err: err,
		Problem: "Entra ID gave no token: " + oneLine(reason, 200) + before,
		Fix:     "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or the certificate, workload or managed identity) against the app registration in the Entra admin center"}
}

// summarize says what each credential kind lacked, with consecutive ones that lacked the same
// thing together: "EnvironmentCredential: no AZURE_TENANT_ID; AzureCLICredential,
// AzureDeveloperCLICredential: not installed".
func summarize(tried [][]string) string {
	if len(tried) == 0 {
		return "azidentity tried no credential"
	}
	var parts []string
	var kinds []string
	last := ""
	flush := func() {
		if len(kinds) > 0 {
			parts = append(parts, strings.Join(kinds, ", ")+": "+last)
		}
	}
	for _, t := range tried {
		reason := shortReason(t[1], t[2])
		if reason != last {
			flush()
			kinds, last = nil, reason
		}
		kinds = append(kinds, t[1])
	}
	flush()
	return strings.Join(parts, "; ")
}

// shortReason says in a few words what azidentity's message for a credential kind means.
func shortReason(kind, msg string) string {
	msg = strings.TrimSpace(msg)
	switch {
	case strings.HasPrefix(msg, "missing environment variable "):
		return "no " + strings.TrimPrefix(msg, "missing environment variable ")
	case strings.HasPrefix(msg, "no client ID specified"):
		return "no AZURE_CLIENT_ID"
	case strings.HasPrefix(msg, "no token file specified"):
		return "no AZURE_FEDERATED_TOKEN_FILE"
	case strings.HasPrefix(msg, "no tenant ID specified"):
		return "no AZURE_TENANT_ID"
	case strings.HasPrefix(msg, "incomplete environment variable configuration"):
		return "AZURE_TENANT_ID and AZURE_CLIENT_ID but no AZURE_CLIENT_SECRET, certificate or username"
	case kind == "ManagedIdentityCredential" && (strings.Contains(msg, "169.254.169.254") || strings.Contains(msg, "timed out") ||
		strings.Contains(msg, "no response")):
		return "no managed identity endpoint answered"
	case strings.Contains(msg, "empty managedidentity.UserAssignedClientID"):
		return "AZURE_CLIENT_ID is set but empty"
	case strings.Contains(msg, "executable not found"):
		return "not installed"
	case strings.Contains(msg, "az login") || strings.Contains(msg, "azd auth login") || strings.Contains(msg, "Connect-AzAccount"):
		return "not signed in"
	}
	if i := strings.Index(msg, " To troubleshoot, visit"); i >= 0 {
		msg = msg[:i]
	}
	return oneLine(msg, 120)
}

// credentialName is the credential a kind presented, in the words of the person who set it up.
func credentialName(kind string) string {
	switch kind {
	case "ClientSecretCredential":
		return "the client secret"
	case "ClientCertificateCredential":
		return "the client certificate"
	case "UsernamePasswordCredential":
		return "the username and password"
	case "WorkloadIdentityCredential", "ClientAssertionCredential":
		return "the workload identity's federated token"
	case "ManagedIdentityCredential":
		return "the managed identity"
	case "":
		return "the credential"
	}
	return "the credential of " + kind
}

// entraError reads Entra ID's error code, the first sentence of its description and the OAuth
// error (invalid_client, say) from the answer's JSON body, or else from azidentity's message,
// which quotes it.
func entraError(resp *http.Response, text string) (code, desc, oauth string) {
	var body struct {
		Error       string `json:"error"`
		Codes       []int  `json:"error_codes"`
		Description string `json:"error_description"`
	}
	if raw, err := runtime.Payload(resp); err == nil && json.Unmarshal(raw, &body) == nil && len(body.Codes) > 0 {
		code, oauth = fmt.Sprintf("AADSTS%d", body.Codes[0]), oneLine(body.Error, 40)
		desc = strings.TrimSpace(strings.TrimPrefix(body.Description, code+":"))
	} else if m := aadstsRE.FindStringSubmatch(strings.Join(strings.Fields(text), " ")); m != nil {
		code, desc = "AADSTS"+m[1], m[2]
	} else {
		return "", "", ""
	}
	if i := strings.Index(desc, " Trace ID:"); i >= 0 {
		desc = desc[:i]
	}
	if i := strings.Index(desc, ". "); i >= 0 {
		desc = desc[:i+1]
	}
	return code, oneLine(desc, 200), oauth
}

// refusalFix is the variable to fix for Entra ID's code, and how.
func refusalFix(code, kind string) (variable, fix string) {
	switch code {
	case "AADSTS7000215":
		return "AZURE_CLIENT_SECRET", "put the client secret's Value (not its Secret ID) from App registrations → tapbot's app → Certificates & secrets in AZURE_CLIENT_SECRET"
	case "AADSTS7000222":
		return "AZURE_CLIENT_SECRET", "the client secret has expired: create a new one under App registrations → tapbot's app → Certificates & secrets and put its Value in AZURE_CLIENT_SECRET"
	case "AADSTS700016":
		return "AZURE_CLIENT_ID", "check AZURE_CLIENT_ID (Application (client) ID) and AZURE_TENANT_ID (Directory (tenant) ID) on the app registration's Overview page"
	case "AADSTS90002", "AADSTS900023":
		return "AZURE_TENANT_ID", "check AZURE_TENANT_ID (Directory (tenant) ID) and, for a national cloud, AZURE_AUTHORITY_HOST"
	case "AADSTS700027":
		return "AZURE_CLIENT_CERTIFICATE_PATH", "upload the certificate's public key under App registrations → tapbot's app → Certificates & secrets, or point AZURE_CLIENT_CERTIFICATE_PATH at the one uploaded there"
	}
	if kind == "ClientSecretCredential" {
		return "AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET", "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET against the app registration in the Entra admin center"
	}
	return "AZURE_TENANT_ID/AZURE_CLIENT_ID", "check AZURE_TENANT_ID and AZURE_CLIENT_ID, and the certificate, workload or managed identity, against the app registration in the Entra admin center"
}

// unreachable says why a request got no answer, and what to check.
func unreachable(err error) (why, fix string) {
	fix = "check this host's network access to Entra ID (DNS, firewall, HTTPS_PROXY), and AZURE_AUTHORITY_HOST (unset means https://login.microsoftonline.com/)"
	var dns *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var wrongHost x509.HostnameError
	var netErr net.Error
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "no such host", fix
	case errors.As(err, &dns):
		return "DNS lookup failed (" + dns.Err + ")", fix
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", fix
	case errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to the host", fix
	case errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &wrongHost):
		return "its TLS certificate is not trusted (" + oneLine(certCause(err), 150) + ")",
			"check the CA certificates this host trusts and any TLS-inspecting proxy, and AZURE_AUTHORITY_HOST"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return "no answer in time", fix
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return oneLine(err.Error(), 150), fix
}

func certCause(err error) string {
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return certErr.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// oneLine folds s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}
