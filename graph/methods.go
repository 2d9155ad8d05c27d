package graph

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/tapbot/tapbot/approvals"
)

// AuthMethods lists the user's registered sign-in methods (GET /users/{id}/authentication/methods,
// application permission UserAuthenticationMethod.Read.All), so tapbot can tell when the person
// set up a passkey, security key, Windows Hello or Authenticator with their pass. Graph answers
// with one object per method, typed by @odata.type; the SDK decodes each into its own model,
// which is matched here by concrete type (Windows Hello's and Platform SSO's interfaces overlap).
// Nothing secret is read: Graph returns no passwords or pass codes from this call.
func (c *Client) AuthMethods(ctx context.Context, userID string) ([]approvals.AuthMethod, error) {
	uid := strings.TrimSpace(userID)
	if uid == "" {
		return nil, approvals.Errorf(approvals.Invalid, "No Entra ID user was given.")
	}
	subject := userSubject(uid)
	ctx, cancel, err := c.callContext(ctx, opListMethods)
	if err != nil {
		return nil, classify(ctx, opListMethods, subject, err)
	}
	defer cancel()
	methods := c.svc.Users().ByUserId(uid).Authentication().Methods()
	res, err := methods.Get(ctx, nil)
	var out []approvals.AuthMethod
	for page := 1; ; page++ {
		if err != nil {
			return nil, classify(ctx, opListMethods, subject, err)
		}
		if res == nil {
			return out, nil
		}
		for _, m := range res.GetValue() {
			if m != nil {
				out = append(out, toAuthMethod(m))
			}
		}
		next := res.GetOdataNextLink()
		if next == nil || *next == "" {
			return out, nil
		}
		if page == maxPages {
			return nil, fmt.Errorf("graph: sign-in methods of %s still had more pages after %d; the answer looks broken", subject, maxPages)
		}
		res, err = methods.WithUrl(*next).Get(ctx, nil)
	}
}

// toAuthMethod maps an SDK method model to the domain's, keeping its kind, name and creation time.
func toAuthMethod(m models.AuthenticationMethodable) approvals.AuthMethod {
	out := approvals.AuthMethod{ID: deref(m.GetId()), Kind: approvals.MethodOther}
	set := func(kind approvals.MethodKind, name *string, created *time.Time) {
		out.Kind, out.Name = kind, strings.TrimSpace(deref(name))
		if created != nil {
			out.CreatedAt = *created
		}
	}
	switch v := m.(type) {
	case *models.Fido2AuthenticationMethod:
		set(approvals.MethodFIDO2, v.GetDisplayName(), v.GetCreatedDateTime())
	case *models.WindowsHelloForBusinessAuthenticationMethod:
		set(approvals.MethodWindowsHello, v.GetDisplayName(), v.GetCreatedDateTime())
	case *models.MicrosoftAuthenticatorAuthenticationMethod:
		set(approvals.MethodAuthenticator, v.GetDisplayName(), v.GetCreatedDateTime())
	case *models.PlatformCredentialAuthenticationMethod:
		set(approvals.MethodPlatformCredential, v.GetDisplayName(), v.GetCreatedDateTime())
	case *models.PasswordAuthenticationMethod:
		set(approvals.MethodPassword, nil, v.GetCreatedDateTime())
	case *models.PhoneAuthenticationMethod:
		set(approvals.MethodPhone, nil, nil)
	case *models.EmailAuthenticationMethod:
		set(approvals.MethodEmail, nil, nil)
	case *models.SoftwareOathAuthenticationMethod:
		set(approvals.MethodSoftwareOath, nil, nil)
	case *models.TemporaryAccessPassAuthenticationMethod:
		set(approvals.MethodTemporaryPass, nil, v.GetCreatedDateTime())
	}
	return out
}
