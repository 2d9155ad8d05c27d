// Package graph is tapbot's Microsoft Graph adapter: it implements approvals.Directory with
// msgraph-sdk-go, so looking users and their managers up, telling whether a user is privileged,
// reading the Temporary Access Pass policy and creating, listing and deleting passes go through
// Microsoft's own SDK (its retry handling, serialization and error types), and turns Graph's
// failures into approvals.Error sentences that people in Slack can act on.
//
// Underneath the SDK's middleware the Client bounds how many requests are in flight, gives each
// attempt its own deadline and reports each attempt to an optional metrics hook (Options), so
// the SDK stays in charge of retries while tapbot stays responsive when Graph is slow.
//
// Nothing this package returns or formats holds a pass code, an access token or a client secret.
package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	msgraphauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"

	"github.com/tapbot/tapbot/approvals"
)

// DefaultBaseURL is Microsoft Graph v1.0 in the global cloud.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

const (
	// DefaultConcurrency is how many Graph requests a Client has on the wire at once
	// (TAP_GRAPH_CONCURRENCY): enough for a busy approvals channel, few enough that a burst of
	// approvals does not run tapbot into Graph's per-app throttling.
	DefaultConcurrency = 8
	// DefaultAttemptTimeout bounds each HTTP attempt (TAP_GRAPH_TIMEOUT). Graph answers these
	// calls in well under a second; an attempt that takes 30 s is stuck, not slow.
	DefaultAttemptTimeout = 30 * time.Second
	// DefaultTimeout bounds one Directory call, SDK retries and Retry-After waits included, when
	// AttemptTimeout is the default: twice the attempt timeout, so a throttled call still gets
	// its retries. A caller with a promise to keep bounds its calls tighter through their
	// context: an approval gives Graph one and a half attempts in all from the click
	// (approvals.Config.IssueTimeout), so the approver hears within a minute.
	DefaultTimeout = 2 * DefaultAttemptTimeout
)

// Options configures New. The zero value talks to global Microsoft Graph.
type Options struct {
	// BaseURL is the Graph root (GRAPH_BASE_URL, read by package config), default DefaultBaseURL. The bearer token is
	// attached for this URL's host whatever it is.
	BaseURL string
	// Transport carries Graph requests underneath the SDK's middleware; nil means the SDK's
	// default. Tests pass one that trusts graphfake's certificate.
	Transport http.RoundTripper
	// Concurrency is how many Graph requests (not token requests) the Client has in flight at
	// once; more wait, for as long as their context allows. Default DefaultConcurrency.
	Concurrency int
	// AttemptTimeout bounds each HTTP attempt, including each retry the SDK makes; default
	// DefaultAttemptTimeout. An attempt that runs out is not retried: a create may have
	// succeeded on Graph's side, and creating a second pass would silently replace the first.
	AttemptTimeout time.Duration
	// Timeout bounds each Directory call, retries, Retry-After waits and waiting for a free slot
	// included; default twice AttemptTimeout.
	Timeout time.Duration
	// Observe, when set, is called once per HTTP attempt to Graph, after its answer arrives, with
	// the operation ("find_user", "list_passes", "get_policy", "create_pass", "delete_pass",
	// "get_manager", "list_methods", "list_audits" (each page of PassEvents), or, for
	// Privileges, "list_roles", "list_role_groups" and "check_groups")
	// and the HTTP status, or 0 when the attempt got no answer (connection failure, timeout,
	// caller gone). A throttled call that succeeds on retry reports, say, create_pass 429 then
	// create_pass 201. Requests that never left the queue and token requests are not reported.
	// It is called concurrently on the request path, so it must be safe for concurrent use and
	// quick (incrementing a Prometheus counter is). It keeps this package free of any metrics
	// library.
	Observe func(operation string, status int)
}

// Client implements approvals.Directory on Microsoft Graph. It is safe for concurrent use.
type Client struct {
	svc       *msgraphsdk.GraphServiceClient
	cred      azcore.TokenCredential
	scope     string
	timeout   time.Duration
	attempts  *attemptTransport
	calls     chan struct{} // admission slots, see admit
	admitting atomic.Int32  // calls waiting for admission, for tests
	now       func() time.Time
}

var _ approvals.Directory = (*Client)(nil)

// New builds a Client that authenticates with cred (scope <graph>/.default) and sends requests
// through the SDK's default middleware (retry, redirect, headers...) less compression (pipeline).
func New(cred azcore.TokenCredential, opts Options) (*Client, error) {
	return newClient(cred, opts, pipeline)
}

func newClient(cred azcore.TokenCredential, opts Options, order func([]khttp.Middleware) []khttp.Middleware) (*Client, error) {
	if cred == nil {
		return nil, errors.New("graph: a token credential is required")
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("graph: base URL %q must be an absolute https URL", base)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("graph: base URL %q must use https (plain http only reaches loopback)", base)
	}
	concurrency := opts.Concurrency
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	attemptTimeout := opts.AttemptTimeout
	if attemptTimeout <= 0 {
		attemptTimeout = DefaultAttemptTimeout
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 2 * attemptTimeout
	}

	// kiota only attaches a token to allowed hosts and silently sends nothing for others, so the
	// base URL's own host is the allow list.
	auth, err := msgraphauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(
		taggedCredential{cred}, []string{scopeFor(u.Hostname())}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph: authentication provider: %w", err)
	}
	parent := opts.Transport
	if parent == nil {
		parent = khttp.GetDefaultTransport()
	}
	attempts := newAttemptTransport(parent, concurrency, attemptTimeout, opts.Observe)
	httpClient := newHTTPClient(attempts, order)
	// Each call's context carries its deadline (callContext), and the attempts carry theirs.
	// http.Client's own timeout (100 s in the SDK's default client) would only add a third
	// deadline whose error replaces the cause with a string.
	httpClient.Timeout = 0
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph: request adapter: %w", err)
	}
	adapter.SetBaseUrl(base)
	// Not NewGraphServiceClient: it writes the SDK's process-wide backing store factory
	// (store.BackingStoreFactoryInstance, to the value it already holds) each time, which races
	// with every model another client is decoding meanwhile (two replicas in one test process,
	// or doctor beside a running bot). A nil factory leaves the global alone; the adapter still
	// gets its backing-store parse and serialization factories.
	svc := &msgraphsdk.GraphServiceClient{GraphBaseServiceClient: *msgraphsdk.NewGraphBaseServiceClient(adapter, nil)}
	return &Client{svc: svc, cred: cred, scope: scopeFor(u.Hostname()),
		timeout: timeout, attempts: attempts, calls: make(chan struct{}, 2*concurrency), now: time.Now}, nil
}

func msgraphcoreOptions() msgraphcore.GraphClientOptions { return msgraphsdk.GetDefaultClientOptions() }

// scopeFor picks the .default scope of the national cloud that hosts Graph at host; any other
// host (including test fakes) uses the global scope, as Graph's own endpoints do.
func scopeFor(host string) string {
	switch strings.ToLower(host) {
	case "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn":
		return "https://" + strings.ToLower(host) + "/.default"
	}
	return "https://graph.microsoft.com/.default"
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenError marks a failure to obtain an access token, so it is reported as a sign-in problem
// rather than as a Graph answer.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "get Microsoft Graph token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// taggedCredential wraps the caller's credential to tag its errors as tokenError.
type taggedCredential struct{ cred azcore.TokenCredential }

func (t taggedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := t.cred.GetToken(ctx, opts)
	if err != nil {
		return tok, &tokenError{err}
	}
	return tok, nil
}

// CheckSignIn gets a Graph token now, so wrong Azure credentials are reported when tapbot starts
// rather than at the first approval.
func (c *Client) CheckSignIn(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}}); err != nil {
		return fmt.Errorf("get a Microsoft Graph token: %w", err)
	}
	return nil
}
