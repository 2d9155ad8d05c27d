package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// publicAuthorityHosts are the Entra ID hosts that instance discovery knows (MSAL's trusted host
// list). Discovery asks login.microsoftonline.com about the authority, which can't work for an
// authority outside Microsoft's clouds (a private cloud, or graphfake in tests), so NewCredential
// turns it off for any other host.
var publicAuthorityHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoft.com":              true,
	"login.windows.net":                true,
	"sts.windows.net":                  true,
	"login.microsoftonline.us":         true,
	"login-us.microsoftonline.com":     true,
	"login.usgovcloudapi.net":          true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
	"login.microsoftonline.de":         true,
	"login.sovcloud-identity.fr":       true,
	"login.sovcloud-identity.de":       true,
	"login.sovcloud-identity.sg":       true,
}

// isPublicAuthority reports whether host is one of Microsoft's own Entra ID hosts, for which
// instance discovery works.
func isPublicAuthority(host string) bool { return publicAuthorityHosts[strings.ToLower(host)] }

// NewCredential builds azidentity's DefaultAzureCredential from the environment, following
// azidentity's own conventions (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or a
// certificate, workload identity, managed identity, AZURE_TOKEN_CREDENTIALS...), so operators
// configure tapbot like any other Azure SDK program.
//
// When AZURE_AUTHORITY_HOST names a host outside the public clouds, instance discovery is
// disabled so the token request goes to that host. transport (nil for azidentity's default)
// carries the token requests. The returned credential's errors are *SignInError values: one
// line that says which credential kinds were tried and what each lacked, which host could not be
// reached, or what Entra ID refused. They never contain the value of AZURE_CLIENT_SECRET, even if
// an identity provider echoes it back.
func NewCredential(transport http.RoundTripper) (azcore.TokenCredential, error) {
	opts := &azidentity.DefaultAzureCredentialOptions{}
	if transport != nil {
		opts.ClientOptions.Transport = &http.Client{Transport: transport}
	}
	// Sees each token request's transport failures, which azidentity's errors only quote.
	opts.ClientOptions.PerRetryPolicies = append(opts.ClientOptions.PerRetryPolicies, reachability{})
	if host := os.Getenv("AZURE_AUTHORITY_HOST"); host != "" {
		u, err := url.Parse(host)
		if err != nil || u.Hostname() == "" {
			return nil, errors.New("graph: AZURE_AUTHORITY_HOST must be an https URL such as https://login.microsoftonline.com/")
		}
		opts.DisableInstanceDiscovery = !isPublicAuthority(u.Hostname())
	}
	secret := os.Getenv("AZURE_CLIENT_SECRET")
	cred, err := azidentity.NewDefaultAzureCredential(opts)
	if err != nil {
		return nil, redact(fmt.Errorf("graph: build Azure credential: %w", err), secret)
	}
	return &redactingCredential{cred: cred, secret: secret}, nil
}

// redactingCredential turns token errors into one-line *SignInError values and keeps the client
// secret out of them. azidentity does not put the secret in its errors, but it does include the
// identity provider's response body, which tapbot does not control.
type redactingCredential struct {
	cred   azcore.TokenCredential
	secret string
}

func (r *redactingCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	failed := &attempts{}
	tok, err := r.cred.GetToken(context.WithValue(ctx, attemptsKey{}, failed), opts)
	if err != nil {
		e := signInError(redact(err, r.secret), failed)
		e.Problem, e.Fix = redactString(e.Problem, r.secret), redactString(e.Fix, r.secret)
		return tok, e
	}
	return tok, nil
}

func redactString(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// redact returns err unchanged unless its text contains secret; then it returns a new error with
// the secret replaced and no link to the original (whose text would still hold it).
func redact(err error, secret string) error {
	if err == nil || len(secret) < 4 || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[redacted]"))
}
