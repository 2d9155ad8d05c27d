// Package graphfake is a protocol-level stand-in for Microsoft Entra ID's token endpoint and the
// slice of Microsoft Graph that tapbot uses (users and their managers, Temporary Access Pass
// methods, the Temporary Access Pass policy, directory role assignments and group membership,
// the sign-in methods people register, and the audit log's records of passes created and
// deleted, by tapbot or outside it).
//
// It speaks HTTPS with a certificate signed by a CA generated at start, so the real azidentity,
// MSAL and msgraph-sdk-go code paths run unchanged against it: tests, the demo command and the
// load generator all exercise the same client code as production. It deliberately does not import
// the testing package; problems it notices in what clients send (no bearer token, a body labelled
// gzip that is not, an unknown route...) are collected as Violations for the caller to check.
package graphfake

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Operation names accepted by FailNext, Hang, Calls and MaxInFlight. They name what a request
// does rather than its URL so tests read like the Graph documentation.
const (
	OpDiscovery  = "discovery"  // GET /{tenant}/v2.0/.well-known/openid-configuration
	OpToken      = "token"      // POST /{tenant}/oauth2/v2.0/token
	OpGetUser    = "getUser"    // GET /v1.0/users/{id | userPrincipalName}
	OpFindUsers  = "findUsers"  // GET /v1.0/users?$filter=...
	OpListPasses = "listPasses" // GET /v1.0/users/{id}/authentication/temporaryAccessPassMethods
	OpCreatePass = "createPass" // POST /v1.0/users/{id}/authentication/temporaryAccessPassMethods
	OpDeletePass = "deletePass" // DELETE /v1.0/users/{id}/authentication/temporaryAccessPassMethods/{passID}
	OpGetPolicy  = "getPolicy"  // GET /v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass
	OpGetManager = "getManager" // GET /v1.0/users/{id}/manager
	// OpListRoles lists directory role assignments of one principal:
	// GET /v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{id}'
	OpListRoles = "listRoles"
	// OpListRoleGroups lists the tenant's role-assignable groups:
	// GET /v1.0/groups?$filter=isAssignableToRole eq true
	OpListRoleGroups = "listRoleGroups"
	OpCheckGroups    = "checkGroups" // POST /v1.0/users/{id}/checkMemberGroups
	// OpListMethods lists a user's sign-in methods: GET /v1.0/users/{id}/authentication/methods
	OpListMethods = "listMethods"
	// OpListAudits reads Entra ID's audit log: GET /v1.0/auditLogs/directoryAudits (see audit.go)
	OpListAudits = "listAudits"
)

// Options tunes a Server. The zero value is a fast fake on the real clock.
type Options struct {
	// Latency is added to every Graph call (not token calls), to make load tests and demos
	// behave like a remote service.
	Latency time.Duration
	// Now is the fake's clock for pass start, expiry and usability; nil means time.Now. Tests
	// move it forward to see passes expire without sleeping.
	Now func() time.Time
	// Hostnames are extra DNS names the server certificate covers and Transport routes to the
	// fake, so a client can be pointed at a non-Microsoft, non-loopback Graph host name.
	Hostnames []string
	// PageSize caps how many items one page of a list answer (role assignments, groups) holds;
	// more come behind @odata.nextLink, as in Graph. Zero means Graph's default of 100 (or the
	// request's $top). Tests set it low to prove a client follows nextLink.
	PageSize int
	// Roles are the application permissions (Microsoft Graph app roles) the app registration
	// has been granted with admin consent: they go in the roles claim of every access token,
	// and a Graph call that none of them allows is refused with 403, as Graph does. nil means
	// DefaultRoles; SetRoles changes them for tokens issued later.
	Roles []string

	// The audit log (audit.go). AuditPageSize caps a directoryAudits page (default
	// DefaultAuditPageSize, small so paging is exercised); AuditRetention is how far back records
	// are kept (default DefaultAuditRetention, 7 days; 30 days for a P1/P2 tenant);
	// AuditRequests per AuditWindow is the reports throttle (default 5 per 10 s; negative turns
	// it off); AuditDelay is how long after its activityDateTime a record shows up, on the fake's
	// clock. AppDisplayName is the app's name in records of changes it makes (default "tapbot").
	AuditPageSize  int
	AuditRetention time.Duration
	AuditRequests  int
	AuditWindow    time.Duration
	AuditDelay     time.Duration
	AppDisplayName string
}

// User is a directory user the fake knows.
type User struct {
	ID          string // object ID; a GUID in Entra ID
	UPN         string // userPrincipalName
	Mail        string // may be empty, or differ from UPN
	DisplayName string
	// ProxyAddresses are the user's other addresses as Entra ID stores them, a type and an
	// address: "SMTP:" marks the primary email address, "smtp:" each alias, and other types
	// ("SIP:", "X500:") are not email addresses at all. One person can be reached at all of them.
	ProxyAddresses []string
	// Disabled is accountEnabled=false: the account cannot sign in. Shared mailboxes are such
	// user objects.
	Disabled bool
	// UserType is "Member" or "Guest"; empty means "Member".
	UserType string
	// HireDate is employeeHireDate, which HR provisioning fills; zero when it is not set.
	HireDate time.Time
}

// Policy is the tenant's Temporary Access Pass configuration, as in
// temporaryAccessPassAuthenticationMethodConfiguration.
type Policy struct {
	Enabled                bool
	MinLifetimeMinutes     int
	MaxLifetimeMinutes     int
	DefaultLifetimeMinutes int
	// IsUsableOnce forces every pass to be one-time.
	IsUsableOnce bool
	// DefaultLength is the length of generated codes (Entra allows 8 to 48).
	DefaultLength int
}

// DefaultPolicy is Entra ID's out-of-the-box Temporary Access Pass policy, with the method enabled.
var DefaultPolicy = Policy{
	Enabled:                true,
	MinLifetimeMinutes:     60,
	MaxLifetimeMinutes:     480,
	DefaultLifetimeMinutes: 60,
	DefaultLength:          8,
}

// IssuedPass is a pass the fake created, kept so tests can assert on what reached "Entra ID".
type IssuedPass struct {
	ID              string
	UserID          string
	Code            string
	LifetimeMinutes int
	UsableOnce      bool
	CreatedAt       time.Time
	StartsAt        time.Time
	// Used is set once a one-time pass has been used to sign in (see SignIn).
	Used bool
	// Replaced is set when a later pass for the same user replaced this one, as Entra ID keeps
	// only one Temporary Access Pass per user.
	Replaced bool
	// Deleted is set when a client deleted the pass (OpDeletePass); Graph no longer lists it and
	// it no longer signs anyone in.
	Deleted bool
}

type failure struct {
	status     int
	remaining  int
	retryAfter string
}

// Server is a running fake Entra ID + Microsoft Graph endpoint on 127.0.0.1.
type Server struct {
	opts         Options
	caPEM        []byte
	listener     net.Listener
	addr         string // 127.0.0.1:PORT
	port         string
	srv          *http.Server
	transport    *http.Transport
	served       chan struct{}
	closing      chan struct{}
	closeOnce    sync.Once
	tenantID     string
	clientID     string
	clientSecret string

	mu         sync.Mutex
	users      map[string]User // by lower-case ID
	policy     Policy
	passes     map[string][]*IssuedPass // by user ID, oldest first
	tokens     map[string]issuedToken   // issued bearer tokens -> expiry and roles
	roles      []string                 // application permissions put in tokens issued from now on
	calls      map[string]int
	failures   map[string][]*failure
	hangs      map[string]time.Duration
	held       map[string]chan struct{} // ops whose calls wait for a Hold's release
	violations []string
	// inFlight and maxInFlight count Graph requests being served, by operation and, under "",
	// across all Graph operations, so tests can prove a client's concurrency limit holds.
	inFlight    map[string]int
	maxInFlight map[string]int

	// The directory beyond users: see privileges.go.
	managers        map[string]string          // lower-case user ID -> manager object ID
	contacts        map[string]string          // lower-case contact ID -> display name
	roleDefinitions map[string]*roleDefinition // by lower-case display name
	roleAssignments []roleAssignment           // in creation order
	groups          map[string]*group          // by lower-case ID
	methods         map[string][]Method        // lower-case user ID -> registered methods; see methods.go
	audit           auditState                 // see audit.go
}

// New starts a fake on a random loopback port with DefaultPolicy and no users.
func New(opts Options) (*Server, error) {
	pool, caPEM, cert, err := newCertificates(opts.Hostnames)
	if err != nil {
		return nil, fmt.Errorf("graphfake: make certificates: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("graphfake: listen: %w", err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	s := &Server{
		opts:         opts,
		caPEM:        caPEM,
		listener:     l,
		addr:         l.Addr().String(),
		port:         port,
		served:       make(chan struct{}),
		closing:      make(chan struct{}),
		tenantID:     newGUID(),
		clientID:     newGUID(),
		clientSecret: newClientSecret(),
		users:        make(map[string]User),
		policy:       DefaultPolicy,
		passes:       make(map[string][]*IssuedPass),
		tokens:       make(map[string]issuedToken),
		roles:        append([]string(nil), DefaultRoles...),
		calls:        make(map[string]int),
		failures:     make(map[string][]*failure),
		hangs:        make(map[string]time.Duration),
		held:         make(map[string]chan struct{}),
		inFlight:     make(map[string]int),
		maxInFlight:  make(map[string]int),

		managers:        make(map[string]string),
		contacts:        make(map[string]string),
		roleDefinitions: make(map[string]*roleDefinition),
		groups:          make(map[string]*group),
		audit:           newAuditState(opts),
	}
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		// TLS handshake noise from clients that give up (timeouts under test) is expected.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.transport = &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext:         s.dial,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if opts.Roles != nil {
		s.roles = append([]string(nil), opts.Roles...)
	}
	go func() {
		defer close(s.served)
		_ = s.srv.ServeTLS(l, "", "")
	}()
	return s, nil
}

// Close stops the server, releasing any hanging requests first.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		_ = s.srv.Close()
		<-s.served
		s.transport.CloseIdleConnections()
	})
}

// CACertPEM is the fake's CA certificate in PEM, for a separate process that must trust the fake
// (end-to-end tests that kill a replica run it as its own process).
func (s *Server) CACertPEM() []byte { return s.caPEM }

// AuthorityHost is the value for AZURE_AUTHORITY_HOST.
func (s *Server) AuthorityHost() string { return "https://" + s.addr + "/" }

// GraphURL is the Microsoft Graph base URL (the equivalent of https://graph.microsoft.com/v1.0).
func (s *Server) GraphURL() string { return "https://" + s.addr + "/v1.0" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Transport trusts the fake's certificate and dials only the fake: loopback addresses on its port
// and Options.Hostnames on any port reach it; anything else fails and is recorded as a violation,
// so a client that tries to reach the real cloud (for example MSAL instance discovery against
// login.microsoftonline.com) is caught instead of leaving the machine.
func (s *Server) Transport() http.RoundTripper { return s.transport }

// TenantID is the directory (tenant) ID the token endpoint accepts, for AZURE_TENANT_ID.
func (s *Server) TenantID() string { return s.tenantID }

// ClientID is the application (client) ID the token endpoint accepts, for AZURE_CLIENT_ID.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret is the only client secret the token endpoint accepts, for AZURE_CLIENT_SECRET.
func (s *Server) ClientSecret() string { return s.clientSecret }

// AddUser adds or replaces a directory user. A missing ID gets a fresh GUID.
func (s *Server) AddUser(u User) User {
	if u.ID == "" {
		u.ID = newGUID()
	}
	u.ProxyAddresses = append([]string(nil), u.ProxyAddresses...) // the caller's slice stays theirs
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(u.ID)] = u
	return u
}

// SetPolicy replaces the tenant's Temporary Access Pass policy. Zero lengths default to 8.
func (s *Server) SetPolicy(p Policy) {
	if p.DefaultLength == 0 {
		p.DefaultLength = 8
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
}

// FailNext makes the next n calls of op answer status with a realistic error body (an OData error
// for Graph, an AADSTS error for the token endpoint), with a Retry-After header when retryAfter is
// not empty. Rules queue up: a second FailNext applies after the first is used up. n <= 0 clears
// op's pending failures.
func (s *Server) FailNext(op string, status int, n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.failures, op)
		return
	}
	s.failures[op] = append(s.failures[op], &failure{status: status, remaining: n, retryAfter: retryAfter})
}

// Hang delays every later call of op by d before it is answered (until Hang(op, 0)), or until the
// client gives up or the server closes. Use it to prove timeouts work.
func (s *Server) Hang(op string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangs[op] = d
}

// Hold makes every later call of op wait, before it is answered, until release is called (or the
// client gives up, or the server closes): a Graph call that stays in flight exactly as long as a
// test needs, however slow the machine. Calls made after release are answered at once.
func (s *Server) Hold(op string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.held[op] = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.held[op] == ch {
				delete(s.held, op)
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// RemoveUser deletes a user from the tenant, as an admin deleting the account would: later calls
// naming the user answer 404, and the user's passes no longer sign anyone in (they are marked
// Deleted).
func (s *Server) RemoveUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, strings.ToLower(id))
	for _, p := range s.passes[strings.ToLower(id)] {
		p.Deleted = true
	}
}

// Passes returns every pass created for the user (by object ID), oldest first. At most the last is
// live: like Entra ID, creating a pass replaces the previous one, which is then marked Replaced
// and no longer listed by Graph; a deleted pass is marked Deleted and no longer listed either.
func (s *Server) Passes(userID string) []IssuedPass {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []IssuedPass
	for _, p := range s.passes[strings.ToLower(userID)] {
		out = append(out, *p)
	}
	return out
}

// AllPasses returns every pass created for anyone, so tests can check that no code leaked
// anywhere.
func (s *Server) AllPasses() []IssuedPass {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []IssuedPass
	for _, ps := range s.passes {
		for _, p := range ps {
			out = append(out, *p)
		}
	}
	return out
}

// SignIn simulates the user signing in with code: it reports whether the live pass accepts it and,
// for a one-time pass, uses it up (Graph then reports methodUsabilityReason OneTimeUsed).
func (s *Server) SignIn(userID, code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.livePassLocked(userID)
	if p == nil {
		return false
	}
	if usable, _ := s.usabilityLocked(p); !usable || p.Code != code {
		return false
	}
	if p.UsableOnce {
		p.Used = true
	}
	return true
}

// InFlight is how many of op's requests the fake is serving right now (waiting on a Hold
// included); a request whose client went away leaves once the fake notices.
func (s *Server) InFlight(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[op]
}

// Calls counts requests received for op, including failed and rejected ones.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// MaxInFlight is the largest number of op's requests the fake was serving at the same moment
// since it started; op "" counts all Graph operations together (token requests never count).
// A request is in flight from its arrival until its answer is written, latency and hangs included,
// so a client's concurrency limit shows here exactly as Graph would feel it.
func (s *Server) MaxInFlight(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight[op]
}

func (s *Server) enter(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{op, ""} {
		s.inFlight[k]++
		if s.inFlight[k] > s.maxInFlight[k] {
			s.maxInFlight[k] = s.inFlight[k]
		}
	}
}

func (s *Server) leave(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[op]--
	s.inFlight[""]--
}

// Violations lists protocol mistakes clients made (missing bearer token, mislabelled gzip body,
// unknown route, wrong scope...). A correct client leaves it empty.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func (s *Server) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ok := false
	switch strings.ToLower(host) {
	case "127.0.0.1", "localhost", "::1":
		ok = port == s.port
	default:
		for _, h := range s.opts.Hostnames {
			if strings.EqualFold(h, host) {
				ok = true
			}
		}
	}
	if !ok {
		s.violation("client tried to reach %s, which is not the fake", addr)
		return nil, fmt.Errorf("graphfake: refusing to dial %s: only the fake is reachable through this transport", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.addr)
}

// ServeHTTP routes between the Entra ID token endpoints and Graph.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		s.violation("undecodable path %q", r.URL.EscapedPath())
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	switch {
	case len(segs) >= 1 && segs[0] == "v1.0":
		s.serveGraph(w, r, segs[1:])
	case len(segs) == 4 && segs[1] == "v2.0" && segs[2] == ".well-known" && segs[3] == "openid-configuration":
		s.serveDiscovery(w, r, segs[0])
	case len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token":
		s.serveToken(w, r, segs[0])
	default:
		s.violation("unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	}
}

// takeFailure consumes one FailNext rule for op, if any.
func (s *Server) takeFailure(op string) *failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.failures[op]
	for len(q) > 0 && q[0].remaining <= 0 {
		q = q[1:]
	}
	s.failures[op] = q
	if len(q) == 0 {
		return nil
	}
	q[0].remaining--
	f := *q[0]
	return &f
}

// begin counts a call and applies latency and hangs. It returns false when the client went away
// or the server is closing, in which case nothing should be written.
func (s *Server) begin(r *http.Request, op string, latency bool) bool {
	s.mu.Lock()
	s.calls[op]++
	hang := s.hangs[op]
	held := s.held[op]
	s.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
			return false
		case <-s.closing:
			return false
		}
	}
	d := hang
	if latency {
		d += s.opts.Latency
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

func splitPath(escaped string) ([]string, error) {
	var out []string
	for _, seg := range strings.Split(strings.Trim(escaped, "/"), "/") {
		if seg == "" {
			continue
		}
		u, err := url.PathUnescape(seg) // keeps "+" (UPNs may hold one)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newClientSecret looks like an Entra client secret value (three characters, "8Q~", then more).
func newClientSecret() string {
	var b [30]byte
	_, _ = rand.Read(b[:])
	return "gf8Q~" + base64.RawURLEncoding.EncodeToString(b[:])
}

// passAlphabet resembles the characters Entra ID uses in Temporary Access Pass codes.
const passAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#$%&*+-=?@"

func newPassCode(n int) string {
	if n < 8 {
		n = 8
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = passAlphabet[int(b[i])%len(passAlphabet)]
	}
	return string(b)
}
