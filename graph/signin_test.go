package graph_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tapbot/tapbot/graph"
	"github.com/tapbot/tapbot/internal/graphfake"
)

// closedPort is an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSignInErrorsAreOneLine asks azidentity's real DefaultAzureCredential for a token with
// nothing set, with a secret graphfake refuses, and with an authority host that does not answer:
// each error is one short line that says what was tried and what lacked, which host could not be
// reached, or what Entra ID refused, and never the secret.
func TestSignInErrorsAreOneLine(t *testing.T) {
	fake, err := graphfake.New(graphfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	closed := closedPort(t)
	const wrongSecret = "not-the-secret-value-123"
	tests := []struct {
		name      string
		vars      map[string]string
		transport http.RoundTripper
		kind      graph.SignInKind
		variable  string
		host      string
		problem   []string // fragments of the one line
	}{
		{
			name: "nothing set", vars: map[string]string{}, transport: fake.Transport(),
			kind: graph.NoCredential, variable: "AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET",
			problem: []string{"no Azure credential found: ", "EnvironmentCredential: no AZURE_TENANT_ID",
				"WorkloadIdentityCredential: no AZURE_CLIENT_ID", "ManagedIdentityCredential: no managed identity endpoint answered",
				"AzureCLICredential, AzureDeveloperCLICredential, AzurePowerShellCredential: not installed"},
		},
		{
			name: "secret refused",
			vars: map[string]string{"AZURE_TENANT_ID": fake.TenantID(), "AZURE_CLIENT_ID": fake.ClientID(),
				"AZURE_CLIENT_SECRET": wrongSecret, "AZURE_AUTHORITY_HOST": fake.AuthorityHost()},
			transport: fake.Transport(), kind: graph.Refused, variable: "AZURE_CLIENT_SECRET", host: fake.Addr(),
			problem: []string{"Entra ID refused the client secret: AADSTS7000215: Invalid client secret provided"},
		},
		{
			// What some networks do: something answers at the managed identity address, and refuses.
			name: "managed identity endpoint refuses", vars: map[string]string{}, transport: imdsRefuses{},
			kind: graph.Refused, variable: "AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET", host: "169.254.169.254",
			problem: []string{"the managed identity endpoint at 169.254.169.254 refused the token request (403 Forbidden), after ",
				"EnvironmentCredential: no AZURE_TENANT_ID; WorkloadIdentityCredential: no AZURE_CLIENT_ID"},
		},
		{
			name: "authority host does not answer",
			vars: map[string]string{"AZURE_TENANT_ID": fake.TenantID(), "AZURE_CLIENT_ID": fake.ClientID(),
				"AZURE_CLIENT_SECRET": wrongSecret, "AZURE_AUTHORITY_HOST": "https://" + closed + "/"},
			transport: http.DefaultTransport, kind: graph.Unreachable, host: closed,
			problem: []string{"cannot reach Entra ID at " + closed + ": connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, nil)
			for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST"} {
				t.Setenv(k, "")
				os.Unsetenv(k) // azidentity tells unset from empty
			}
			for k, v := range tt.vars {
				t.Setenv(k, v)
			}
			t.Setenv("PATH", t.TempDir()) // no az, azd or pwsh, whatever this machine has
			cred, err := graph.NewCredential(tt.transport)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
			var se *graph.SignInError
			if !errors.As(err, &se) {
				t.Fatalf("GetToken = %v, want a *graph.SignInError", err)
			}
			t.Logf("%s: %s — %s", se.Var, se, se.Fix)
			if se.Kind != tt.kind || se.Var != tt.variable || se.Host != tt.host {
				t.Errorf("kind %d, var %q, host %q; want %d, %q, %q", se.Kind, se.Var, se.Host, tt.kind, tt.variable, tt.host)
			}
			line := se.Error()
			for _, want := range tt.problem {
				if !strings.Contains(line, want) {
					t.Errorf("error %q lacks %q", line, want)
				}
			}
			if strings.Contains(line, "\n") || len(line) > 400 || se.Fix == "" || strings.Contains(se.Fix, "\n") {
				t.Errorf("not one short line with a fix (%d characters): %q — %q", len(line), line, se.Fix)
			}
			if strings.Contains(line+se.Fix, wrongSecret) {
				t.Errorf("the error shows the client secret")
			}
			if tt.kind == graph.Refused {
				var af *azidentity.AuthenticationFailedError
				if !errors.As(err, &af) {
					t.Errorf("azidentity's AuthenticationFailedError is no longer reachable with errors.As")
				}
			}
		})
	}
}

// imdsRefuses answers 403 at the managed identity endpoint and refuses to dial anything else.
type imdsRefuses struct{}

func (imdsRefuses) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Hostname() != "169.254.169.254" {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("Forbidden")), Request: r}, nil
}
