package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// AppID returns the application (client) ID tapbot signs in to Graph as, from its access token:
// the appid claim (v1.0 tokens, which Graph gets) or azp (v2.0). It is the ID Entra ID's audit
// log names in initiatedBy.app.appId for the passes tapbot makes, whatever the credential: a
// client secret, a certificate, workload identity, or a system-assigned managed identity, which
// has no AZURE_CLIENT_ID to read it from. The token itself is never returned or logged.
func (c *Client) AppID(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return "", fmt.Errorf("get a Microsoft Graph token: %w", err)
	}
	return tokenAppID(tok.Token)
}

// tokenAppID reads the app ID claim of a JWT without verifying it: the token came from Entra ID
// over TLS and only its holder reads it. Errors never quote the token.
func tokenAppID(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("graph: the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", errors.New("graph: the access token's payload is not base64url")
	}
	var claims struct {
		AppID string `json:"appid"`
		AZP   string `json:"azp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", errors.New("graph: the access token's payload is not JSON")
	}
	if id := strings.TrimSpace(claims.AppID); id != "" {
		return id, nil
	}
	if id := strings.TrimSpace(claims.AZP); id != "" {
		return id, nil
	}
	return "", errors.New("graph: the access token names no app (no appid or azp claim)")
}
