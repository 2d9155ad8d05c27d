package approvals

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Directory is what tapbot needs from the identity provider (Entra ID through Microsoft Graph).
// Implementations return *Error with a plain sentence for anything a user should read:
// NotFound for a missing user, Invalid for a pass the tenant policy refuses, Forbidden when the
// app may not act on the user, Unavailable for throttling or outages.
type Directory interface {
	// FindUser looks a user up by UPN or email address (mail).
	FindUser(ctx context.Context, emailOrUPN string) (DirectoryUser, error)
	// HasActivePass reports whether the user already has a Temporary Access Pass that a new one
	// would replace.
	HasActivePass(ctx context.Context, userID string) (bool, error)
	// PassPolicy reads the tenant's Temporary Access Pass policy.
	PassPolicy(ctx context.Context) (PassPolicy, error)
	// CreatePassStarting creates a Temporary Access Pass for the user that starts working at
	// startsAt (zero: at once) and works for lifetime from then.
	CreatePassStarting(ctx context.Context, userID string, startsAt time.Time, lifetime time.Duration, usableOnce bool) (Pass, error)
	// ListPasses returns the user's Temporary Access Pass methods, without their codes, so a pass
	// created by an interrupted approval can be found and deleted.
	ListPasses(ctx context.Context, userID string) ([]PassInfo, error)
	// DeletePass deletes one Temporary Access Pass method; a pass that is already gone is not an
	// error.
	DeletePass(ctx context.Context, userID, passID string) error
	// Manager returns the user's manager; NotFound when none is set.
	Manager(ctx context.Context, userID string) (DirectoryUser, error)
	// Privileges reports why a user is privileged: their active directory role assignments and
	// which of the protected groups (object IDs) they belong to, directly or through nesting.
	Privileges(ctx context.Context, userID string, protectedGroups []string) (Privileges, error)
	// AuthMethods lists the user's registered sign-in methods, without secrets, so tapbot can
	// tell when the person set up a passkey, security key, Windows Hello or Authenticator with
	// their pass (see AuthMethod).
	AuthMethods(ctx context.Context, userID string) ([]AuthMethod, error)
}

// Privileges is what makes a user privileged: a pass for them takes over more than one account.
type Privileges struct {
	Roles  []string // display names of active directory role assignments
	Groups []string // the protected group IDs the user is a member of
}

// Privileged reports whether the user holds any role or protected group.
func (p Privileges) Privileged() bool { return len(p.Roles) > 0 || len(p.Groups) > 0 }

// PassInfo describes an existing pass without its code.
type PassInfo struct {
	ID        string
	CreatedAt time.Time
	StartsAt  time.Time
	Lifetime  time.Duration
	Usable    bool
}

// DirectoryUser is a person in the directory.
type DirectoryUser struct {
	ID          string // object ID
	UPN         string
	DisplayName string
	Mail        string
	// Disabled is accountEnabled=false: nobody can sign in with the account. Shared mailboxes
	// are disabled user objects.
	Disabled bool
	// Guest is userType "Guest": a person from another organisation invited into the tenant.
	Guest bool
}

// IsGuest reports whether the account is a guest: userType "Guest", or a UPN with "#EXT#",
// the mark Entra ID gives an invited external account (whose userType an admin can change).
func (u DirectoryUser) IsGuest() bool {
	return u.Guest || strings.Contains(strings.ToUpper(u.UPN), "#EXT#")
}

// PassPolicy is the tenant's Temporary Access Pass configuration.
type PassPolicy struct {
	Enabled         bool
	MinLifetime     time.Duration
	MaxLifetime     time.Duration
	DefaultLifetime time.Duration
	// OneTimeOnly is true when the tenant allows only one-time passes.
	OneTimeOnly bool
}

// Pass is a created Temporary Access Pass. Code is the secret: it must never be logged, stored in
// plaintext or put in an error. However a Pass is printed (fmt, JSON, slog), the code is left
// out; only Code itself, read on purpose, holds it.
type Pass struct {
	ID         string // the authentication method's ID in the directory
	Code       string `json:"-"` // json.Marshal, and slog's JSON handler for a slice of passes, skip it
	StartsAt   time.Time
	Lifetime   time.Duration
	UsableOnce bool
}

// ExpiresAt is when the pass stops working.
func (p Pass) ExpiresAt() time.Time { return p.StartsAt.Add(p.Lifetime) }

// String keeps the code out of any accidental %v.
func (p Pass) String() string { return "Pass{id:" + p.ID + " code:[redacted]}" }

// GoString keeps the code out of %#v.
func (p Pass) GoString() string { return p.String() }

// Format keeps the code out of every fmt verb: String answers only %v, %s, %q and %x, and a
// verb such as %d would print the fields, code included.
func (p Pass) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

// LogValue keeps the code out of logs: slog's JSON handler ignores String and would write every
// field. A log line still says which pass it was and when it works.
func (p Pass) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", p.ID),
		slog.Time("starts_at", p.StartsAt),
		slog.String("lifetime", p.Lifetime.String()),
		slog.Bool("usable_once", p.UsableOnce),
		slog.String("code", "[redacted]"),
	)
}
