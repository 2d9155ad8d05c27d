package graph

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/tapbot/tapbot/internal/graphfake"
)

func typeNames(mws []khttp.Middleware) []string {
	var out []string
	for _, m := range mws {
		out = append(out, fmt.Sprintf("%T", m))
	}
	return out
}

// TestOrderMiddlewareIsFixed: whatever order the SDK's map iteration produced, the client's
// pipeline is the same, with compression outside retry.
func TestOrderMiddlewareIsFixed(t *testing.T) {
	opts := msgraphcoreOptions()
	want := strings.Join(typeNames(orderMiddleware(msgraphcore.GetDefaultMiddlewaresWithOptions(&opts))), " ")
	if !strings.Contains(want, "CompressionHandler *nethttplibrary.RetryHandler") {
		t.Fatalf("retry is not directly inside compression: %s", want)
	}
	for i := 0; i < 50; i++ {
		got := strings.Join(typeNames(orderMiddleware(msgraphcore.GetDefaultMiddlewaresWithOptions(&opts))), " ")
		if got != want {
			t.Fatalf("order changed:\n%s\n%s", got, want)
		}
	}
}

// TestRetryOutsideCompressionBreaksGzip shows why orderMiddleware exists: with the retry handler
// outside the compression handler (one of the SDK's random orders), a throttled POST is retried
// with an uncompressed body still labelled gzip.
func TestRetryOutsideCompressionBreaksGzip(t *testing.T) {
	fake, err := graphfake.New(graphfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	for _, k := range []string{"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AZURE_TENANT_ID", fake.TenantID())
	t.Setenv("AZURE_CLIENT_ID", fake.ClientID())
	t.Setenv("AZURE_CLIENT_SECRET", fake.ClientSecret())
	t.Setenv("AZURE_AUTHORITY_HOST", fake.AuthorityHost())
	cred, err := NewCredential(fake.Transport())
	if err != nil {
		t.Fatal(err)
	}
	retryOutside := func(mws []khttp.Middleware) []khttp.Middleware {
		out := orderMiddleware(mws)
		var ci, ri int
		for i, m := range out {
			switch m.(type) {
			case *khttp.CompressionHandler:
				ci = i
			case *khttp.RetryHandler:
				ri = i
			}
		}
		out[ci], out[ri] = out[ri], out[ci]
		return out
	}
	user := fake.AddUser(graphfake.User{UPN: "alice@contoso.com"})
	for name, order := range map[string]func([]khttp.Middleware) []khttp.Middleware{"retry outside": retryOutside, "fixed": orderMiddleware} {
		c, err := newClient(cred, Options{BaseURL: fake.GraphURL(), Transport: fake.Transport(), Timeout: 10 * time.Second}, order)
		if err != nil {
			t.Fatal(err)
		}
		before := len(fake.Violations())
		fake.FailNext(graphfake.OpCreatePass, http.StatusTooManyRequests, 1, "0")
		_, err = c.CreatePass(context.Background(), user.ID, time.Hour, false)
		violations := fake.Violations()[before:]
		broken := len(violations) > 0 && strings.Contains(strings.Join(violations, " "), "is not gzip")
		if name == "fixed" && (err != nil || len(violations) > 0) {
			t.Errorf("fixed order: err %v, violations %v", err, violations)
		}
		if name == "retry outside" && (err == nil || !broken) {
			t.Errorf("retry outside compression did not break as expected: err %v, violations %v", err, violations)
		}
	}
}

// TestPipelineDropsOnlyCompression: production keeps every other SDK middleware, retry innermost,
// and sends bodies as they are (no gzip state per request).
func TestPipelineDropsOnlyCompression(t *testing.T) {
	opts := msgraphcoreOptions()
	defaults := msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)
	got := typeNames(pipeline(defaults))
	if strings.Contains(strings.Join(got, " "), "Compression") {
		t.Fatalf("pipeline still compresses: %v", got)
	}
	if len(got) != len(defaults)-1 {
		t.Fatalf("pipeline has %d middlewares, want the SDK's %d less compression: %v", len(got), len(defaults), got)
	}
	if got[len(got)-1] != "*nethttplibrary.RetryHandler" {
		t.Fatalf("retry is not innermost: %v", got)
	}
}
