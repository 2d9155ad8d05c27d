package approvals

import (
	"errors"
	"fmt"
)

// Code classifies an error that a person in Slack may see, so adapters can choose how to show it
// without parsing strings.
type Code string

// The codes users may see.
const (
	Invalid     Code = "invalid"     // the input is wrong; the message says how to fix it
	NotFound    Code = "not_found"   // a user, account or request does not exist
	Forbidden   Code = "forbidden"   // the actor may not do this
	Conflict    Code = "conflict"    // the request is no longer in a state that allows this
	Unavailable Code = "unavailable" // a dependency is down or throttling; retrying later may work
)

// Error is the one error type whose Message is written for people in Slack. Every other error is
// logged with detail and shown to users as "something went wrong".
type Error struct {
	Code Code
	// Message is a plain sentence for the user: no chat markup (adapters escape it whole, since
	// it may carry names from the directory) and never a secret.
	Message string
	Err     error // underlying cause, for logs only
	// Who lists the chat users and user groups who may do what was refused, so the refusal can
	// name them.
	Who []string
	// Field names the input the error is about (FieldTarget, FieldLifetime...), so a form can
	// show it beside that input; empty when it is about the request as a whole.
	Field string
}

// The inputs of a request that an error can be about.
const (
	FieldTarget   = "target"
	FieldLifetime = "lifetime"
	FieldUsage    = "usage"
	FieldStart    = "start"
	FieldReason   = "reason"
)

// ErrorField returns the input err is about, or "" when it is about the request as a whole or
// is not an *Error.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// onField returns err attributed to field when it is an *Error about no particular input yet;
// the original is copied, not changed, since errors may be shared.
func onField(err error, field string) error {
	var e *Error
	if !errors.As(err, &e) || e.Field != "" {
		return err
	}
	c := *e
	c.Field = field
	return &c
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a user-facing message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with a user-facing message that keeps cause for logs.
func WrapError(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// SomethingWentWrong is what users see for an error that is not an *Error.
const SomethingWentWrong = "Something went wrong on tapbot's side; nothing was changed. Please try again, and tell your Slack admin if it keeps happening."

// UserMessage returns the sentence to show a person for err.
func UserMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return SomethingWentWrong
}

// ErrorCode returns err's Code, or "" when err is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Sentinel errors returned by stores.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrClaimedElsewhere is TakeSecret finding the pass claimed by another reveal attempt.
	ErrClaimedElsewhere = errors.New("the sealed pass is claimed by another reveal")
	// ErrNotReplicated is TakeSecret's claim not acknowledged by any replica in time.
	ErrNotReplicated = errors.New("no replica acknowledged the claim in time")
	// ErrStaleReveal is TakeSecret or ReturnSecret called by a reveal attempt the request no
	// longer names (it is not Revealing, or another replica or token owns it now): a slow owner
	// that was taken over may neither take the pass nor put it back.
	ErrStaleReveal = errors.New("the reveal attempt no longer owns the request")
)

// WhoMay returns the people and groups an error says may do what was refused.
func WhoMay(err error) []string {
	var e *Error
	if errors.As(err, &e) {
		return e.Who
	}
	return nil
}
