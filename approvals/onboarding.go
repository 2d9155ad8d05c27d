package approvals

import (
	"context"
	"time"
)

// Hire is a person whose first day, as HR provisioning recorded it in Entra ID
// (employeeHireDate), is coming up: the case a first-morning pass exists for.
type Hire struct {
	User DirectoryUser
	// HireDate is employeeHireDate as Entra ID stores it: a point in time, often midnight UTC of
	// the first day, whatever the person's own time zone.
	HireDate time.Time
	// Enabled is accountEnabled: HR-provisioned accounts are often created disabled and enabled
	// on day one, and a pass cannot be used on a disabled account.
	Enabled bool
}

// HireDirectory finds the people who start soon.
type HireDirectory interface {
	// UpcomingHires returns everyone whose hire date is within [from, to], every page read. A
	// tenant whose HR provisioning does not fill employeeHireDate returns none, without an error.
	UpcomingHires(ctx context.Context, from, to time.Time) ([]Hire, error)
}
