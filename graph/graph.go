// Package graph is tapbot's Microsoft Graph adapter: it implements approvals.Directory with
// msgraph-sdk-go, so looking users up, reading the Temporary Access Pass policy and creating
// passes go through Microsoft's own SDK (its retry handling, serialization and error types), and
// turns Graph's failures into approvals.Error sentences that people in Slack can act on.
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

// DefaultTimeout bounds one Directory call, SDK retries included, so a slow Graph cannot hold a
// Slack interaction open indefinitely. It leaves room for the SDK's default three retries with
// exponential back-off (3 s, 6 s, 12 s plus jitter).
const DefaultTimeout = 30 * time.Second

// Options configures New. The zero value talks to global Microsoft Graph.
type Options struct {
	// BaseURL is the Graph root (GRAPH_BASE_URL, read by package config), default DefaultBaseURL. The bearer token is
	// attached for this URL's host whatever it is.
	BaseURL string
	// Transport carries Graph requests underneath the SDK's middleware; nil means the SDK's
	// default. Tests pass one that trusts graphfake's certificate.
	Transport http.RoundTripper
	// Timeout bounds each Directory call, retries included; default DefaultTimeout.
	Timeout time.Duration
}

// Client implements approvals.Directory on Microsoft Graph. It is safe for concurrent use.
type Client struct {
	svc     *msgraphsdk.GraphServiceClient
	cred    azcore.TokenCredential
	scope   string
	timeout time.Duration
	now     func() time.Time
}

var _ approvals.Directory = (*Client)(nil)

// New builds a Client that authenticates with cred (scope <graph>/.default) and sends requests
// through the SDK's default middleware (retry, redirect, compression...).
func New(cred azcore.TokenCredential, opts Options) (*Client, error) {
	return newClient(cred, opts, orderMiddleware)
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
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}

	// kiota only attaches a token to allowed hosts and silently sends nothing for others, so the
	// base URL's own host is the allow list.
	auth, err := msgraphauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(
		taggedCredential{cred}, []string{scopeFor(u.Hostname())}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph: authentication provider: %w", err)
	}
	httpClient := newHTTPClient(opts.Transport, order)
	httpClient.Timeout = timeout
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph: request adapter: %w", err)
	}
	adapter.SetBaseUrl(base)
	return &Client{svc: msgraphsdk.NewGraphServiceClient(adapter), cred: cred, scope: scopeFor(u.Hostname()),
		timeout: timeout, now: time.Now}, nil
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
