package graph

import (
	"net/http"
	"sort"

	khttp "github.com/microsoft/kiota-http-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
)

// orderMiddleware puts the SDK's default middlewares in a fixed order.
//
// kiota-http-go builds its default middleware list by ranging over a map, so every client gets a
// random order. One of those orders is broken: when the retry handler runs outside the
// compression handler, the first attempt gzips the body and sets Content-Encoding on the header
// map that both handlers share (each handler works on a req.WithContext copy), but the retry
// rewinds and resends the original, uncompressed body, which still carries "Content-Encoding:
// gzip". Graph then rejects the retried POST (a 429 on CreatePass turns into a failure). With
// compression outside retry, the retry rewinds the compressed body and the label stays true.
//
// The middlewares themselves are the SDK's; only their order is fixed.
func orderMiddleware(mws []khttp.Middleware) []khttp.Middleware {
	rank := func(m khttp.Middleware) int {
		switch m.(type) {
		case *msgraphcore.GraphTelemetryHandler:
			return 0
		case *khttp.UrlReplaceHandler:
			return 1
		case *khttp.ParametersNameDecodingHandler:
			return 2
		case *khttp.UserAgentHandler:
			return 3
		case *khttp.HeadersInspectionHandler:
			return 4
		case *khttp.RedirectHandler:
			return 6
		case *khttp.CompressionHandler:
			return 7
		case *khttp.RetryHandler:
			return 8 // innermost: it retries exactly the bytes that went on the wire
		}
		return 5
	}
	out := append([]khttp.Middleware(nil), mws...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// pipeline is the middleware tapbot runs: the SDK's defaults in orderMiddleware's fixed order,
// without the compression handler. tapbot's request bodies are a few hundred bytes, so gzip saves
// nothing on the wire, while each compressed request allocated about 450 KB of gzip state
// (measured with tapload -pprof: most of the heap at peak during 500 approvals, see BENCHMARKS.md).
func pipeline(mws []khttp.Middleware) []khttp.Middleware {
	kept := make([]khttp.Middleware, 0, len(mws))
	for _, m := range mws {
		if _, gzip := m.(*khttp.CompressionHandler); !gzip {
			kept = append(kept, m)
		}
	}
	return orderMiddleware(kept)
}

// newHTTPClient is the SDK's default Graph HTTP client (msgraphcore.GetDefaultClient: redirect
// policy, default middlewares) with parent as the transport underneath the middleware pipeline.
func newHTTPClient(parent http.RoundTripper, order func([]khttp.Middleware) []khttp.Middleware) *http.Client {
	opts := msgraphcoreOptions()
	mws := order(msgraphcore.GetDefaultMiddlewaresWithOptions(&opts))
	client := msgraphcore.GetDefaultClient(&opts, mws...)
	client.Transport = khttp.NewCustomTransportWithParentTransport(parent, mws...)
	return client
}
