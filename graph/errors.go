package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/tapbot/tapbot/approvals"
)

// APIError is an error answer from Microsoft Graph, after the SDK's retries. It carries what logs
// and support tickets need (status, OData code and message, request-id) and unwraps to the SDK's
// own error (*odataerrors.ODataError or *abstractions.ApiError).
//
// It exists because the SDK's ODataError.Error() dereferences the error body without checking
// and panics when Graph (or a proxy in front of it) answers without an OData error object.
type APIError struct {
	StatusCode int
	Code       string // OData error code, e.g. "Request_ResourceNotFound"; may be empty
	Message    string // Graph's message; may be empty
	RequestID  string // Graph's request-id, for Microsoft support
	err        error
}

// Error describes the answer for logs; it never panics, unlike the SDK error it wraps.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Microsoft Graph answered %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	return b.String()
}

// Unwrap returns the SDK's error.
func (e *APIError) Unwrap() error { return e.err }

// asAPIError extracts status, code and message from whatever the SDK returned for an HTTP error.
func asAPIError(err error) (*APIError, bool) {
	var already *APIError
	if errors.As(err, &already) {
		return already, true
	}
	var apiErr abs.ApiErrorable
	if !errors.As(err, &apiErr) {
		return nil, false
	}
	out := &APIError{StatusCode: apiErr.GetStatusCode(), err: err}
	if h := apiErr.GetResponseHeaders(); h != nil {
		if ids := h.Get("request-id"); len(ids) > 0 {
			out.RequestID = ids[0]
		}
	}
	var odata *odataerrors.ODataError
	if errors.As(err, &odata) {
		if main := odata.GetErrorEscaped(); main != nil {
			if c := main.GetCode(); c != nil {
				out.Code = *c
			}
			if m := main.GetMessage(); m != nil {
				out.Message = *m
			}
			if out.RequestID == "" {
				if inner := main.GetInnerError(); inner != nil && inner.GetRequestId() != nil {
					out.RequestID = *inner.GetRequestId()
				}
			}
		}
	} else {
		var plain *abs.ApiError
		if errors.As(err, &plain) {
			out.Message = plain.Message
		}
	}
	return out, true
}

// operation says what a Directory call was doing, for the sentences people read and the names
// Options.Observe reports.
type operation int

const (
	opFindUser operation = iota
	opListPasses
	opReadPolicy
	opCreatePass
	opDeletePass
	opGetManager
	opListRoles
	opListRoleGroups
	opCheckGroups
	opListMethods
	opListAudits
	opListHires
)

// String is the operation's name for Options.Observe. The names are part of the package's
// contract (metrics dashboards and alerts use them), so they never change.
func (op operation) String() string {
	switch op {
	case opFindUser:
		return "find_user"
	case opListPasses:
		return "list_passes"
	case opReadPolicy:
		return "get_policy"
	case opCreatePass:
		return "create_pass"
	case opDeletePass:
		return "delete_pass"
	case opGetManager:
		return "get_manager"
	case opListRoles:
		return "list_roles"
	case opListRoleGroups:
		return "list_role_groups"
	case opCheckGroups:
		return "check_groups"
	case opListMethods:
		return "list_methods"
	case opListAudits:
		return "list_audits"
	case opListHires:
		return "list_hires"
	}
	return "other"
}

const (
	msgThrottled = "Microsoft Graph is throttling or unavailable; try again in a few minutes."
	msgTimeout   = "Microsoft Graph did not answer in time; try again in a few minutes."
	msgSignIn    = "tapbot could not sign in to Microsoft Graph; an admin should check its Entra ID app registration and credentials."
	msgReach     = "tapbot could not reach Microsoft Graph; try again in a few minutes."
	msgBusy      = "tapbot is still waiting for Microsoft Graph to answer its other requests, so nothing was done; try again in a few minutes."
)

func forbiddenMessage(op operation) string {
	switch op {
	case opFindUser:
		return "Entra ID does not allow tapbot to look up users (the app lacks User.Read.All)."
	case opListPasses:
		return "Entra ID does not allow tapbot to read this user's Temporary Access Passes (privileged accounts need a higher admin role, or the app lacks UserAuthMethod-TAP.ReadWrite.All)."
	case opReadPolicy:
		return "Entra ID does not allow tapbot to read the Temporary Access Pass policy (the app lacks Policy.Read.AuthenticationMethod)."
	case opCreatePass:
		return "Entra ID does not allow tapbot to create a pass for this user (privileged accounts need a higher admin role, or the app lacks UserAuthMethod-TAP.ReadWrite.All)."
	case opDeletePass:
		return "Entra ID does not allow tapbot to delete this user's Temporary Access Pass (privileged accounts need a higher admin role, or the app lacks UserAuthMethod-TAP.ReadWrite.All)."
	case opGetManager:
		return "Entra ID does not allow tapbot to read users' managers (the app lacks User.Read.All)."
	case opListRoles:
		return "Entra ID does not allow tapbot to read directory role assignments, so it cannot tell whether this user is an admin (the app lacks RoleManagement.Read.Directory)."
	case opListRoleGroups:
		return "Entra ID does not allow tapbot to list role-assignable groups, so it cannot tell whether this user holds an admin role through a group (the app lacks GroupMember.Read.All)."
	case opCheckGroups:
		return "Entra ID does not allow tapbot to check this user's group memberships (the app lacks GroupMember.Read.All)."
	case opListMethods:
		return "Entra ID does not allow tapbot to read this user's sign-in methods (the app lacks UserAuthenticationMethod.Read.All)."
	case opListAudits:
		return "Entra ID does not allow tapbot to read its audit log, so passes made outside tapbot are not raised (the app lacks AuditLog.Read.All); grant it, or set TAP_TENANT_WATCH_INTERVAL=off."
	case opListHires:
		return "Entra ID does not allow tapbot to list users by hire date (the app lacks User.Read.All)."
	}
	return "Entra ID does not allow tapbot to do this."
}

// classify turns an SDK error into what tapbot shows: an *approvals.Error for anything a person
// can act on, a plain wrapped error otherwise. subject names the user the call was about. ctx is
// the call's own context, whose deadline tells a timeout apart from other failures whatever the
// layer that noticed it.
func classify(ctx context.Context, op operation, subject string, err error) error {
	// Checked first: a caller that stopped waiting for a free slot sent nothing, whether its
	// context was cancelled or timed out, and should hear that tapbot is backed up.
	var qErr *queueError
	if errors.As(err, &qErr) {
		return approvals.WrapError(approvals.Unavailable, err, msgBusy)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		// The SDK waits out Retry-After inside the call; when the call's time runs out there,
		// Graph did answer, with throttling.
		if st := callStateFrom(ctx); st != nil && isThrottle(int(st.lastStatus.Load())) {
			return approvals.WrapError(approvals.Unavailable, safe(err), msgThrottled)
		}
		return approvals.WrapError(approvals.Unavailable, safe(err), msgTimeout)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("graph: call cancelled: %w", safe(err))
	}
	var tokErr *tokenError
	if errors.As(err, &tokErr) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return approvals.WrapError(approvals.Unavailable, err, msgTimeout)
		}
		return approvals.WrapError(approvals.Unavailable, err, msgSignIn)
	}
	if apiErr, ok := asAPIError(err); ok {
		return classifyStatus(op, subject, apiErr)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return approvals.WrapError(approvals.Unavailable, err, msgTimeout)
		}
		return approvals.WrapError(approvals.Unavailable, err, msgReach)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return approvals.WrapError(approvals.Unavailable, err, msgReach)
	}
	return fmt.Errorf("graph: unexpected failure: %w", err)
}

// isThrottle reports the statuses the SDK's retry handler retries after a delay.
func isThrottle(status int) bool { return status == 429 || status == 503 || status == 504 }

func classifyStatus(op operation, subject string, e *APIError) error {
	switch status := e.StatusCode; {
	case status == 401:
		return approvals.WrapError(approvals.Unavailable, e, msgSignIn)
	case status == 403:
		return approvals.WrapError(approvals.Forbidden, e, "%s", forbiddenMessage(op))
	case status == 404 && subject != "":
		// A 404 is about the user the call named. A call about no user (the policy, the tenant's
		// role-assignable groups) that 404s is a broken tenant or proxy, not a missing person.
		return approvals.WrapError(approvals.NotFound, e, "No Entra ID account found for %s.", subject)
	case status == 400 && op == opListHires:
		return approvals.WrapError(approvals.Invalid, e, "Microsoft Graph refused the query for upcoming hires (%s).", sentenceFragment(e.Message))
	case status == 400 && op == opCreatePass:
		return approvals.WrapError(approvals.Invalid, e, "%s", refusalMessage(e.Message))
	case status == 408 || status == 429 || status >= 500:
		return approvals.WrapError(approvals.Unavailable, e, msgThrottled)
	}
	return fmt.Errorf("graph: %w", e)
}

// refusalMessage explains a 400 on create. Graph's message is included: it describes a request
// that was refused, so it cannot hold the pass code (none was issued), and it tells the admin
// which policy limit was hit.
func refusalMessage(graphMsg string) string {
	detail := sentenceFragment(graphMsg)
	what := "the pass does not fit the tenant's Temporary Access Pass policy"
	if strings.Contains(strings.ToLower(graphMsg), "lifetime") {
		what = "the lifetime is outside the tenant's Temporary Access Pass policy"
	}
	if detail == "" {
		return "Entra ID refused the pass: " + what + "."
	}
	return "Entra ID refused the pass: " + what + " (" + detail + ")."
}

// sentenceFragment makes a remote message fit inside a sentence: one line, printable, bounded,
// without a trailing full stop.
func sentenceFragment(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 240 {
		s = string(r[:240]) + "…"
	}
	return strings.TrimRight(s, ". ")
}

// safe makes an SDK error whose Error() might panic (an ODataError without a body) safe to print.
func safe(err error) error {
	if e, ok := asAPIError(err); ok {
		return e
	}
	return err
}
