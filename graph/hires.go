package graph

import (
	"context"
	"fmt"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/tapbot/tapbot/approvals"
)

// hireFields are what UpcomingHires reads. employeeHireDate and accountEnabled are not in the
// default property set: Graph returns them only when $select names them.
var hireFields = []string{"id", "userPrincipalName", "displayName", "mail", "employeeHireDate", "accountEnabled"}

// hirePageSize is the page size asked for. Graph allows up to 999 users a page; a cohort is
// rarely more than a page, and paging is followed either way.
const hirePageSize = int32(200)

// UpcomingHires lists the users whose employeeHireDate falls within [from, to]. Filtering on
// employeeHireDate is one of Microsoft Graph's advanced queries: without the ConsistencyLevel:
// eventual header and $count=true Graph refuses it (400 Request_UnsupportedQuery), and $expand is
// not allowed with them, so managers are read one by one with Manager. Each page, the ones behind
// @odata.nextLink included, carries the header.
func (c *Client) UpcomingHires(ctx context.Context, from, to time.Time) ([]approvals.Hire, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("graph: hire window ends (%s) before it starts (%s)", to, from)
	}
	ctx, cancel, err := c.callContext(ctx, opListHires)
	if err != nil {
		return nil, classify(ctx, opListHires, "", err)
	}
	defer cancel()

	headers := abstractions.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	filter := fmt.Sprintf("employeeHireDate ge %s and employeeHireDate le %s",
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	count, top := true, hirePageSize
	cfg := &users.UsersRequestBuilderGetRequestConfiguration{
		Headers: headers,
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{
			Filter: &filter, Count: &count, Select: hireFields, Top: &top,
		},
	}
	res, err := c.svc.Users().Get(ctx, cfg)
	var out []approvals.Hire
	for page := 1; ; page++ {
		if err != nil {
			return nil, classify(ctx, opListHires, "", err)
		}
		if res == nil {
			return out, nil
		}
		for _, u := range res.GetValue() {
			h, ok := toHire(u)
			if ok {
				out = append(out, h)
			}
		}
		next := res.GetOdataNextLink()
		if next == nil || *next == "" {
			return out, nil
		}
		if page == maxPages {
			return nil, fmt.Errorf("graph: upcoming hires still had more pages after %d; the answer looks broken", maxPages)
		}
		// The next link already holds the query; only the header has to be sent again.
		res, err = c.svc.Users().WithUrl(*next).Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{Headers: headers})
	}
}

// toHire maps a user with a hire date; one Graph returned without an ID or a hire date (which the
// filter should rule out) is skipped rather than guessed at.
func toHire(u models.Userable) (approvals.Hire, bool) {
	if u == nil || u.GetEmployeeHireDate() == nil {
		return approvals.Hire{}, false
	}
	du, err := toDirectoryUser(u, "")
	if err != nil {
		return approvals.Hire{}, false
	}
	h := approvals.Hire{User: du, HireDate: u.GetEmployeeHireDate().UTC(), Enabled: true}
	if e := u.GetAccountEnabled(); e != nil {
		h.Enabled = *e
	}
	return h, true
}

// AnyHireDates reports whether any user in the tenant has an employeeHireDate at all, so doctor
// can tell "nobody starts soon" from "HR provisioning does not fill hire dates". It reads one user.
func (c *Client) AnyHireDates(ctx context.Context) (bool, error) {
	ctx, cancel, err := c.callContext(ctx, opListHires)
	if err != nil {
		return false, classify(ctx, opListHires, "", err)
	}
	defer cancel()
	headers := abstractions.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	filter := "employeeHireDate ge 1900-01-01T00:00:00Z"
	count, top := true, int32(1)
	res, err := c.svc.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		Headers: headers,
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{
			Filter: &filter, Count: &count, Select: []string{"id"}, Top: &top,
		},
	})
	if err != nil {
		return false, classify(ctx, opListHires, "", err)
	}
	return res != nil && len(res.GetValue()) > 0, nil
}
