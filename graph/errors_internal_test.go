package graph

import (
	"context"
	"errors"
	"testing"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/tapbot/tapbot/approvals"
)

// TestODataErrorWithoutBody: the SDK's ODataError.Error() panics when the answer had no OData
// error object (a proxy's 502, say). classify must neither panic nor lose the status.
func TestODataErrorWithoutBody(t *testing.T) {
	odata := odataerrors.NewODataError()
	odata.SetStatusCode(502)
	err := classify(context.Background(), opCreatePass, "someone", odata)
	if approvals.ErrorCode(err) != approvals.Unavailable {
		t.Fatalf("got %v", err)
	}
	_ = err.Error() // must not panic
	var back *odataerrors.ODataError
	if !errors.As(err, &back) || back.ResponseStatusCode != 502 {
		t.Errorf("cause lost: %v", err)
	}

	plain := &abs.ApiError{Message: "The server returned an unexpected status code with no response body: 404", ResponseStatusCode: 404}
	if got := classify(context.Background(), opFindUser, "a@b.c", plain); approvals.ErrorCode(got) != approvals.NotFound {
		t.Errorf("ApiError 404 -> %v", got)
	}
	if got := classify(context.Background(), opReadPolicy, "", plain); approvals.ErrorCode(got) != "" {
		t.Errorf("a missing policy entry is not the user's problem: %v", got)
	}
}

func TestWouldReplace(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	ptr := func(s string) *string { return &s }
	b := func(v bool) *bool { return &v }
	i := func(v int32) *int32 { return &v }
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	cases := []struct {
		name   string
		reason *string
		usable *bool
		start  *time.Time
		life   *int32
		want   bool
	}{
		{"usable", ptr("EnabledByPolicy"), b(true), at(-time.Minute), i(60), true},
		{"not yet valid", ptr("NotYetValid"), b(false), at(time.Hour), i(60), true},
		{"expired", ptr("Expired"), b(false), at(-2 * time.Hour), i(60), false},
		{"used", ptr("OneTimeUsed"), b(false), at(-time.Minute), i(60), false},
		{"disabled by policy, still in lifetime", ptr("DisabledByPolicy"), b(false), at(-time.Minute), i(60), true},
		{"disabled by policy, past lifetime", ptr("DisabledByPolicy"), b(false), at(-2 * time.Hour), i(60), false},
		{"nothing known", nil, nil, nil, nil, true},
	}
	for _, tc := range cases {
		m := models.NewTemporaryAccessPassAuthenticationMethod()
		m.SetMethodUsabilityReason(tc.reason)
		m.SetIsUsable(tc.usable)
		m.SetStartDateTime(tc.start)
		m.SetLifetimeInMinutes(tc.life)
		if got := wouldReplace(m, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsPublicAuthority(t *testing.T) {
	for host, want := range map[string]bool{
		"login.microsoftonline.com": true, "LOGIN.MICROSOFTONLINE.US": true, "login.chinacloudapi.cn": true,
		"127.0.0.1": false, "login.contoso.com": false, "login.microsoftonline.com.evil.test": false,
	} {
		if got := isPublicAuthority(host); got != want {
			t.Errorf("%s: %v, want %v", host, got, want)
		}
	}
}

func TestRefusalMessage(t *testing.T) {
	got := refusalMessage("Lifetime too long.\n\tsee  policy.")
	want := "Entra ID refused the pass: the lifetime is outside the tenant's Temporary Access Pass policy (Lifetime too long. see policy)."
	if got != want {
		t.Errorf("got %q", got)
	}
	if got := refusalMessage(""); got != "Entra ID refused the pass: the pass does not fit the tenant's Temporary Access Pass policy." {
		t.Errorf("got %q", got)
	}
}

func TestRedact(t *testing.T) {
	const secret = "abc8Q~very-secret"
	err := redact(errors.New("provider said: bad secret "+secret), secret)
	if err.Error() != "provider said: bad secret [redacted]" {
		t.Errorf("got %q", err)
	}
	orig := errors.New("no secret here")
	if redact(orig, secret) != orig {
		t.Error("an error without the secret should pass through unchanged")
	}
}
