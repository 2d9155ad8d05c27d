package graph

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/tapbot/tapbot/approvals"
)

// tapConfigurationID is the id of the Temporary Access Pass entry in the authentication methods
// policy.
const tapConfigurationID = "TemporaryAccessPass"

// userFields are the user properties tapbot reads. accountEnabled and userType are not in the
// set Graph returns without $select, so they must be named here: without them a disabled
// account or a guest would look like any member.
var userFields = []string{"id", "userPrincipalName", "displayName", "mail", "accountEnabled", "userType"}

// callContext bounds one Directory call by Options.Timeout, tells the transport underneath the
// SDK which operation its attempts belong to, and admits the call (admit). The returned cancel
// releases both; on error nothing was sent and there is nothing to release.
func (c *Client) callContext(ctx context.Context, op operation) (context.Context, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(withCallState(ctx, op), c.timeout)
	release, err := c.admit(ctx)
	if err != nil {
		cancel()
		return ctx, nil, err
	}
	return ctx, func() { release(); cancel() }, nil
}

// admit waits for one of the Client's call slots (twice Options.Concurrency) before a call enters
// the SDK. The transport already bounds attempts on the wire; without this, a burst of 500
// approvals built 500 kiota requests that then sat, half made, in the transport's queue (tapload
// -pprof, BENCHMARKS.md). Twice the attempt limit keeps the wire busy while some calls build
// requests, parse answers or wait out a Retry-After.
func (c *Client) admit(ctx context.Context) (release func(), err error) {
	select {
	case c.calls <- struct{}{}:
	default:
		c.admitting.Add(1)
		defer c.admitting.Add(-1)
		select {
		case c.calls <- struct{}{}:
		case <-ctx.Done():
			return nil, &queueError{err: ctx.Err()}
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-c.calls }) }, nil
}

// FindUser looks a user up by user principal name and, when no user has that UPN, by mail or by
// one of their proxy addresses (people often know a colleague's email address, which need not
// equal the UPN, and one person may use an alias: "smtp:" entries of proxyAddresses). Every
// address of a person finds the same object ID, which is what the four-eyes rules compare.
func (c *Client) FindUser(ctx context.Context, emailOrUPN string) (approvals.DirectoryUser, error) {
	who := strings.TrimSpace(emailOrUPN)
	if err := checkAddress(who); err != nil {
		return approvals.DirectoryUser{}, err
	}
	ctx, cancel, err := c.callContext(ctx, opFindUser)
	if err != nil {
		return approvals.DirectoryUser{}, classify(ctx, opFindUser, who, err)
	}
	defer cancel()

	u, err := c.svc.Users().ByUserId(who).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userFields},
	})
	if err == nil {
		return toDirectoryUser(u, who)
	}
	// Graph answers 404 for an unknown UPN, and 400 for some UPN shapes it cannot take in a path;
	// either way the $filter query can still find the person by mail or UPN.
	if apiErr, ok := asAPIError(err); !ok || (apiErr.StatusCode != 404 && apiErr.StatusCode != 400) {
		return approvals.DirectoryUser{}, classify(ctx, opFindUser, who, err)
	}

	// eq on proxyAddresses, through the any lambda, works without advanced query parameters.
	// Entra ID compares without regard to case, so "smtp:" finds the primary "SMTP:" entry too.
	lit := odataString(who)
	filter := fmt.Sprintf("mail eq '%s' or userPrincipalName eq '%s' or proxyAddresses/any(p:p eq 'smtp:%s')", lit, lit, lit)
	top := int32(2) // two is enough to tell "one match" from "ambiguous"
	res, err := c.svc.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: userFields, Top: &top},
	})
	if err != nil {
		return approvals.DirectoryUser{}, classify(ctx, opFindUser, who, err)
	}
	var found []models.Userable
	if res != nil {
		found = res.GetValue()
	}
	switch len(found) {
	case 0:
		return approvals.DirectoryUser{}, approvals.Errorf(approvals.NotFound, "No Entra ID account found for %s.", who)
	case 1:
		return toDirectoryUser(found[0], who)
	default:
		return approvals.DirectoryUser{}, approvals.Errorf(approvals.Invalid,
			"More than one Entra ID account uses %s; give the person's user principal name instead.", who)
	}
}

// HasActivePass reports whether the user has a Temporary Access Pass that a new one would
// replace: one that is usable now or has not yet expired.
func (c *Client) HasActivePass(ctx context.Context, userID string) (bool, error) {
	methods, err := c.listMethods(ctx, userID)
	if err != nil {
		return false, err
	}
	now := c.now()
	for _, m := range methods {
		if wouldReplace(m, now) {
			return true, nil
		}
	}
	return false, nil
}

// ListPasses returns the user's Temporary Access Pass methods without their codes (Graph only
// ever returns a code from the create call). Entra ID keeps at most one per user, so there is no
// paging. A pass without a start time is taken to start when it was created, as Entra ID does.
func (c *Client) ListPasses(ctx context.Context, userID string) ([]approvals.PassInfo, error) {
	methods, err := c.listMethods(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]approvals.PassInfo, 0, len(methods))
	for _, m := range methods {
		p := approvals.PassInfo{ID: deref(m.GetId())}
		if t := m.GetCreatedDateTime(); t != nil {
			p.CreatedAt = *t
		}
		p.StartsAt = p.CreatedAt
		if t := m.GetStartDateTime(); t != nil {
			p.StartsAt = *t
		}
		if l := m.GetLifetimeInMinutes(); l != nil && *l > 0 {
			p.Lifetime = time.Duration(*l) * time.Minute
		}
		if u := m.GetIsUsable(); u != nil {
			p.Usable = *u
		}
		out = append(out, p)
	}
	return out, nil
}

// listMethods reads the user's Temporary Access Pass methods, dropping null entries.
func (c *Client) listMethods(ctx context.Context, userID string) ([]models.TemporaryAccessPassAuthenticationMethodable, error) {
	uid := strings.TrimSpace(userID)
	if uid == "" {
		return nil, approvals.Errorf(approvals.Invalid, "No Entra ID user was given.")
	}
	ctx, cancel, err := c.callContext(ctx, opListPasses)
	if err != nil {
		return nil, classify(ctx, opListPasses, userSubject(uid), err)
	}
	defer cancel()
	res, err := c.svc.Users().ByUserId(uid).Authentication().TemporaryAccessPassMethods().Get(ctx, nil)
	if err != nil {
		return nil, classify(ctx, opListPasses, userSubject(uid), err)
	}
	if res == nil {
		return nil, nil
	}
	var out []models.TemporaryAccessPassAuthenticationMethodable
	for _, m := range res.GetValue() {
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// DeletePass deletes one Temporary Access Pass method. Graph's 404 means the pass (or its user)
// no longer exists, which is what the caller wanted, so it is not an error; cleanup after an
// interrupted approval can then run again safely.
func (c *Client) DeletePass(ctx context.Context, userID, passID string) error {
	uid, pid := strings.TrimSpace(userID), strings.TrimSpace(passID)
	if uid == "" {
		return approvals.Errorf(approvals.Invalid, "No Entra ID user was given.")
	}
	if pid == "" {
		return approvals.Errorf(approvals.Invalid, "No Temporary Access Pass was given.")
	}
	ctx, cancel, err := c.callContext(ctx, opDeletePass)
	if err != nil {
		return classify(ctx, opDeletePass, userSubject(uid), err)
	}
	defer cancel()
	err = c.svc.Users().ByUserId(uid).Authentication().TemporaryAccessPassMethods().
		ByTemporaryAccessPassAuthenticationMethodId(pid).Delete(ctx, nil)
	if err == nil {
		return nil
	}
	if apiErr, ok := asAPIError(err); ok && apiErr.StatusCode == 404 {
		return nil
	}
	return classify(ctx, opDeletePass, userSubject(uid), err)
}

// wouldReplace decides from Graph's usability fields whether an existing pass still matters.
// When Graph does not say, it assumes so: warning about a replacement that does not happen is
// cheaper than silently killing a pass someone is about to use.
func wouldReplace(m models.TemporaryAccessPassAuthenticationMethodable, now time.Time) bool {
	if r := m.GetMethodUsabilityReason(); r != nil {
		switch strings.ToLower(*r) {
		case "expired", "onetimeused":
			return false
		case "enabledbypolicy", "notyetvalid":
			return true
		}
	}
	if u := m.GetIsUsable(); u != nil && *u {
		return true
	}
	if start, life := m.GetStartDateTime(), m.GetLifetimeInMinutes(); start != nil && life != nil {
		return now.Before(start.Add(time.Duration(*life) * time.Minute))
	}
	return true
}

// PassPolicy reads the tenant's Temporary Access Pass policy. Missing limits take Entra ID's
// documented defaults (60 to 480 minutes, default 60).
func (c *Client) PassPolicy(ctx context.Context) (approvals.PassPolicy, error) {
	ctx, cancel, err := c.callContext(ctx, opReadPolicy)
	if err != nil {
		return approvals.PassPolicy{}, classify(ctx, opReadPolicy, "", err)
	}
	defer cancel()
	cfg, err := c.svc.Policies().AuthenticationMethodsPolicy().AuthenticationMethodConfigurations().
		ByAuthenticationMethodConfigurationId(tapConfigurationID).Get(ctx, nil)
	if err != nil {
		return approvals.PassPolicy{}, classify(ctx, opReadPolicy, "", err)
	}
	tap, ok := cfg.(models.TemporaryAccessPassAuthenticationMethodConfigurationable)
	if !ok || tap == nil {
		return approvals.PassPolicy{}, fmt.Errorf("graph: the %s policy entry is a %T, not a Temporary Access Pass configuration", tapConfigurationID, cfg)
	}
	minutes := func(v *int32, def int32) time.Duration {
		if v == nil || *v <= 0 {
			return time.Duration(def) * time.Minute
		}
		return time.Duration(*v) * time.Minute
	}
	p := approvals.PassPolicy{
		MinLifetime:     minutes(tap.GetMinimumLifetimeInMinutes(), 60),
		MaxLifetime:     minutes(tap.GetMaximumLifetimeInMinutes(), 480),
		DefaultLifetime: minutes(tap.GetDefaultLifetimeInMinutes(), 60),
	}
	if s := tap.GetState(); s != nil {
		p.Enabled = *s == models.ENABLED_AUTHENTICATIONMETHODSTATE
	}
	if once := tap.GetIsUsableOnce(); once != nil {
		p.OneTimeOnly = *once
	}
	return p, nil
}

// CreatePass creates a Temporary Access Pass. Entra ID keeps one pass per user, so this replaces
// any existing one. The returned Pass holds the code, which only this response ever contains, and
// the method's ID, so a pass whose delivery fails can be found and deleted. A response without an
// ID still returns the pass: the code is what the person needs, and ListPasses can find the ID.
func (c *Client) CreatePass(ctx context.Context, userID string, lifetime time.Duration, usableOnce bool) (approvals.Pass, error) {
	return c.CreatePassStarting(ctx, userID, time.Time{}, lifetime, usableOnce)
}

// CreatePassStarting is CreatePass for a pass that starts working at startsAt (Graph's
// startDateTime; zero means at once). Its lifetime runs from the start, so it expires at
// startsAt plus lifetime; Entra ID refuses a start in the past.
func (c *Client) CreatePassStarting(ctx context.Context, userID string, startsAt time.Time, lifetime time.Duration, usableOnce bool) (approvals.Pass, error) {
	uid := strings.TrimSpace(userID)
	if uid == "" {
		return approvals.Pass{}, approvals.Errorf(approvals.Invalid, "No Entra ID user was given.")
	}
	if lifetime <= 0 || lifetime%time.Minute != 0 || lifetime/time.Minute > math.MaxInt32 {
		return approvals.Pass{}, approvals.Errorf(approvals.Invalid,
			"A Temporary Access Pass lifetime must be a positive whole number of minutes (got %s).", lifetime)
	}
	minutes := int32(lifetime / time.Minute)
	ctx, cancel, err := c.callContext(ctx, opCreatePass)
	if err != nil {
		return approvals.Pass{}, classify(ctx, opCreatePass, userSubject(uid), err)
	}
	defer cancel()

	body := models.NewTemporaryAccessPassAuthenticationMethod()
	body.SetLifetimeInMinutes(&minutes)
	body.SetIsUsableOnce(&usableOnce)
	if !startsAt.IsZero() {
		start := startsAt.UTC()
		body.SetStartDateTime(&start)
	}
	res, err := c.svc.Users().ByUserId(uid).Authentication().TemporaryAccessPassMethods().Post(ctx, body, nil)
	if err != nil {
		return approvals.Pass{}, classify(ctx, opCreatePass, userSubject(uid), err)
	}
	if res == nil || res.GetTemporaryAccessPass() == nil || *res.GetTemporaryAccessPass() == "" {
		return approvals.Pass{}, approvals.WrapError(approvals.Unavailable, errors.New("graph: create answered without temporaryAccessPass"),
			"Entra ID created the pass but did not return its code; create it again to replace it.")
	}
	pass := approvals.Pass{
		ID:         deref(res.GetId()),
		Code:       *res.GetTemporaryAccessPass(),
		Lifetime:   lifetime,
		UsableOnce: usableOnce,
	}
	switch {
	case res.GetStartDateTime() != nil:
		pass.StartsAt = *res.GetStartDateTime()
	case !startsAt.IsZero():
		pass.StartsAt = startsAt
	case res.GetCreatedDateTime() != nil:
		pass.StartsAt = *res.GetCreatedDateTime()
	default:
		pass.StartsAt = c.now()
	}
	if l := res.GetLifetimeInMinutes(); l != nil && *l > 0 {
		pass.Lifetime = time.Duration(*l) * time.Minute
	}
	if once := res.GetIsUsableOnce(); once != nil {
		pass.UsableOnce = *once
	}
	return pass, nil
}

func toDirectoryUser(u models.Userable, fallbackUPN string) (approvals.DirectoryUser, error) {
	if u == nil || u.GetId() == nil || *u.GetId() == "" {
		return approvals.DirectoryUser{}, errors.New("graph: user answer without an id")
	}
	out := approvals.DirectoryUser{ID: *u.GetId(), UPN: fallbackUPN}
	if upn := u.GetUserPrincipalName(); upn != nil && *upn != "" {
		out.UPN = *upn
	}
	if dn := u.GetDisplayName(); dn != nil {
		out.DisplayName = *dn
	}
	if m := u.GetMail(); m != nil {
		out.Mail = *m
	}
	// Absent only when the query did not $select it; guessing "enabled" would let a disabled
	// account through four eyes, so such an answer is refused.
	enabled := u.GetAccountEnabled()
	if enabled == nil {
		return approvals.DirectoryUser{}, fmt.Errorf("graph: user %s answered without accountEnabled (not $selected?)", out.ID)
	}
	out.Disabled = !*enabled
	if t := u.GetUserType(); t != nil {
		out.Guest = strings.EqualFold(*t, "Guest")
	}
	return out, nil
}

// checkAddress rejects input that cannot be a UPN or email address before spending a Graph call.
func checkAddress(s string) error {
	if s == "" {
		return approvals.Errorf(approvals.Invalid, "Give the person's email address or user principal name, like ana@contoso.com.")
	}
	at := strings.Count(s, "@")
	bad := len(s) > 320 || at != 1 || strings.HasPrefix(s, "@") || strings.HasSuffix(s, "@") ||
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
	if bad {
		shown := s
		if r := []rune(shown); len(r) > 80 {
			shown = string(r[:80]) + "…"
		}
		return approvals.Errorf(approvals.Invalid, "%s does not look like an email address or user principal name.",
			strings.Map(func(r rune) rune {
				if unicode.IsControl(r) {
					return ' '
				}
				return r
			}, shown))
	}
	return nil
}

// odataString escapes a value for a single-quoted OData string literal.
func odataString(s string) string { return strings.ReplaceAll(s, "'", "''") }

func userSubject(id string) string { return "the user with ID " + id }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
