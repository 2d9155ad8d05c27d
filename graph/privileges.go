package graph

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/rolemanagement"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/tapbot/tapbot/approvals"
)

// checkMemberGroupsLimit is how many group IDs Graph's checkMemberGroups accepts in one call.
const checkMemberGroupsLimit = 20

// roleGroupsPageSize is Graph's largest page. A tenant holds at most 500 role-assignable groups,
// so their list is one page; nextLink is still followed in case that limit ever grows.
const roleGroupsPageSize = 999

// maxPages bounds how many @odata.nextLink pages one list follows. The call's deadline would end
// a proxy that links pages in a circle anyway; this ends it at once and says why.
const maxPages = 100

// objectID matches an Entra ID object ID (a GUID), which is all checkMemberGroups accepts.
var objectID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Manager returns the user's manager. A user without one is NotFound, and so is a manager that is
// an organizational contact rather than an account (Entra ID allows both): either way there is no
// one in the directory to ask.
func (c *Client) Manager(ctx context.Context, userID string) (approvals.DirectoryUser, error) {
	uid := strings.TrimSpace(userID)
	if uid == "" {
		return approvals.DirectoryUser{}, approvals.Errorf(approvals.Invalid, "No Entra ID user was given.")
	}
	subject := userSubject(uid)
	ctx, cancel, err := c.callContext(ctx, opGetManager)
	if err != nil {
		return approvals.DirectoryUser{}, classify(ctx, opGetManager, subject, err)
	}
	defer cancel()
	obj, err := c.svc.Users().ByUserId(uid).Manager().Get(ctx, &users.ItemManagerRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemManagerRequestBuilderGetQueryParameters{Select: userFields},
	})
	if err != nil {
		// Graph answers 404 Request_ResourceNotFound both for a user without a manager and for
		// a user that does not exist; only the latter names the user in its message.
		if apiErr, ok := asAPIError(err); ok && apiErr.StatusCode == 404 &&
			!strings.Contains(strings.ToLower(apiErr.Message), "'"+strings.ToLower(uid)+"'") {
			return approvals.DirectoryUser{}, approvals.WrapError(approvals.NotFound, apiErr,
				"Entra ID has no manager on record for %s.", subject)
		}
		return approvals.DirectoryUser{}, classify(ctx, opGetManager, subject, err)
	}
	switch m := obj.(type) {
	case models.Userable:
		if m != nil {
			return toDirectoryUser(m, "")
		}
	case models.OrgContactable:
		return approvals.DirectoryUser{}, approvals.Errorf(approvals.NotFound,
			"The manager on record in Entra ID for %s is an organizational contact, not a user account.", subject)
	}
	if obj == nil {
		return approvals.DirectoryUser{}, approvals.Errorf(approvals.NotFound, "Entra ID has no manager on record for %s.", subject)
	}
	return approvals.DirectoryUser{}, approvals.Errorf(approvals.NotFound,
		"The manager on record in Entra ID for %s is not a user account.", subject)
}

// Privileges reports the user's active directory role assignments, held directly or through a
// role-assignable group, and which of protectedGroups (object IDs) the user belongs to, directly
// or through nested groups. Any part that cannot be determined is an error, never an empty
// answer: the caller refuses a pass when it cannot tell, so a partial answer would be worse than
// none. The whole check shares one Options.Timeout.
//
// Roles held through groups: Graph v1.0 has no call that lists them for a user
// (transitiveRoleAssignments is beta only), so this follows Microsoft's documented recipe. Only
// role-assignable groups can hold roles, a tenant has at most 500 of them, and they cannot contain
// groups, so their roles reach exactly their direct members. The tenant's role-assignable groups
// are listed (one request), the user's membership in them is checked together with the protected
// groups (checkMemberGroups, 20 IDs a request), and the assignments of each group the user is in
// are listed. A user in no role-assignable group costs two or three requests in all.
//
// Not seen, by design of the active-assignment API: eligible Privileged Identity Management
// assignments that have not been activated, and eligible (PIM for Groups) membership of a
// role-assignable group. Protect such users through protectedGroups. An ID that names no user is
// NotFound only when a membership check runs (role assignments of an unknown principal are simply
// none), so callers pass IDs that FindUser returned. The whole check holds one admission slot.
func (c *Client) Privileges(ctx context.Context, userID string, protectedGroups []string) (approvals.Privileges, error) {
	uid := strings.TrimSpace(userID)
	if uid == "" {
		return approvals.Privileges{}, approvals.Errorf(approvals.Invalid, "No Entra ID user was given.")
	}
	protected, err := groupIDs(protectedGroups)
	if err != nil {
		return approvals.Privileges{}, err
	}
	subject := userSubject(uid)
	// One deadline for the whole check; each request below tags its own operation, for Observe
	// and for the sentence a refusal gets.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	release, err := c.admit(ctx)
	if err != nil {
		return approvals.Privileges{}, classify(ctx, opListRoles, subject, err)
	}
	defer release()

	var roles nameSet
	if err := c.addRoles(ctx, &roles, uid, subject); err != nil {
		return approvals.Privileges{}, err
	}
	roleGroups, err := c.roleAssignableGroups(ctx)
	if err != nil {
		return approvals.Privileges{}, err
	}
	member, err := c.memberOf(ctx, uid, subject, append(append([]string(nil), protected...), roleGroups...))
	if err != nil {
		return approvals.Privileges{}, err
	}
	for _, g := range roleGroups {
		if member[strings.ToLower(g)] {
			if err := c.addRoles(ctx, &roles, g, subject); err != nil {
				return approvals.Privileges{}, err
			}
		}
	}
	out := approvals.Privileges{Roles: roles.names}
	for _, g := range protected {
		if member[strings.ToLower(g)] {
			out.Groups = append(out.Groups, g)
		}
	}
	return out, nil
}

// groupIDs trims and de-duplicates the protected group IDs, keeping the caller's spelling, and
// refuses anything that is not an object ID before it reaches Graph, whose 400 for a malformed
// ID would not say which one.
func groupIDs(in []string) ([]string, error) {
	var out []string
	seen := make(map[string]bool, len(in))
	for _, id := range in {
		id = strings.TrimSpace(id)
		if id == "" || seen[strings.ToLower(id)] {
			continue
		}
		if !objectID.MatchString(id) {
			return nil, approvals.Errorf(approvals.Invalid, "The protected group ID %q is not an Entra ID object ID.", id)
		}
		seen[strings.ToLower(id)] = true
		out = append(out, id)
	}
	return out, nil
}

// addRoles adds the display names of principalID's active role assignments (any scope) to into.
// subject names the user being checked, for the sentences errors get.
func (c *Client) addRoles(ctx context.Context, into *nameSet, principalID, subject string) error {
	ctx = withCallState(ctx, opListRoles)
	filter := fmt.Sprintf("principalId eq '%s'", odataString(principalID))
	b := c.svc.RoleManagement().Directory().RoleAssignments()
	res, err := b.Get(ctx, &rolemanagement.DirectoryRoleAssignmentsRequestBuilderGetRequestConfiguration{
		QueryParameters: &rolemanagement.DirectoryRoleAssignmentsRequestBuilderGetQueryParameters{
			Filter: &filter, Expand: []string{"roleDefinition"},
		},
	})
	for page := 1; ; page++ {
		if err != nil {
			return classify(ctx, opListRoles, subject, err)
		}
		if res == nil {
			return errors.New("graph: role assignments answered without a body")
		}
		for _, a := range res.GetValue() {
			if a != nil {
				into.add(roleName(a))
			}
		}
		next := res.GetOdataNextLink()
		if next == nil || *next == "" {
			return nil
		}
		if page >= maxPages {
			return fmt.Errorf("graph: role assignments of %s run past %d pages", subject, maxPages)
		}
		res, err = b.WithUrl(*next).Get(ctx, nil)
	}
}

// roleName is the role's display name, or its definition ID when Graph did not expand the
// definition: an assignment whose name is unknown still makes the user privileged.
func roleName(a models.UnifiedRoleAssignmentable) string {
	if d := a.GetRoleDefinition(); d != nil {
		if n := strings.TrimSpace(deref(d.GetDisplayName())); n != "" {
			return n
		}
	}
	if id := strings.TrimSpace(deref(a.GetRoleDefinitionId())); id != "" {
		return id
	}
	return "an unnamed directory role"
}

// roleAssignableGroups lists the IDs of the tenant's role-assignable groups.
func (c *Client) roleAssignableGroups(ctx context.Context) ([]string, error) {
	ctx = withCallState(ctx, opListRoleGroups)
	filter := "isAssignableToRole eq true"
	top := int32(roleGroupsPageSize)
	b := c.svc.Groups()
	res, err := b.Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.GroupsRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id"}, Top: &top},
	})
	var out []string
	for page := 1; ; page++ {
		if err != nil {
			return nil, classify(ctx, opListRoleGroups, "", err)
		}
		if res == nil {
			return nil, errors.New("graph: the list of role-assignable groups answered without a body")
		}
		for _, g := range res.GetValue() {
			if g == nil || deref(g.GetId()) == "" {
				return nil, errors.New("graph: a role-assignable group came without an id")
			}
			out = append(out, *g.GetId())
		}
		next := res.GetOdataNextLink()
		if next == nil || *next == "" {
			return out, nil
		}
		if page >= maxPages {
			return nil, fmt.Errorf("graph: the list of role-assignable groups runs past %d pages", maxPages)
		}
		res, err = b.WithUrl(*next).Get(ctx, nil)
	}
}

// memberOf returns which of groupIDs the user belongs to, directly or transitively, as lower-case
// IDs. checkMemberGroups takes at most 20 IDs, so larger sets go in batches.
func (c *Client) memberOf(ctx context.Context, uid, subject string, groupIDs []string) (map[string]bool, error) {
	var ids []string
	seen := make(map[string]bool, len(groupIDs))
	for _, id := range groupIDs {
		if key := strings.ToLower(id); !seen[key] {
			seen[key] = true
			ids = append(ids, id)
		}
	}
	in := make(map[string]bool)
	ctx = withCallState(ctx, opCheckGroups)
	for start := 0; start < len(ids); start += checkMemberGroupsLimit {
		body := users.NewItemCheckMemberGroupsPostRequestBody()
		body.SetGroupIds(ids[start:min(start+checkMemberGroupsLimit, len(ids))])
		res, err := c.svc.Users().ByUserId(uid).CheckMemberGroups().PostAsCheckMemberGroupsPostResponse(ctx, body, nil)
		if err != nil {
			return nil, classify(ctx, opCheckGroups, subject, err)
		}
		if res == nil {
			// An answer without a list must not read as "member of none".
			return nil, errors.New("graph: checkMemberGroups answered without a body")
		}
		for _, id := range res.GetValue() {
			in[strings.ToLower(id)] = true
		}
	}
	return in, nil
}

// nameSet collects role names once each, in the order found.
type nameSet struct {
	names []string
	seen  map[string]bool
}

func (s *nameSet) add(name string) {
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	if key := strings.ToLower(name); !s.seen[key] {
		s.seen[key] = true
		s.names = append(s.names, name)
	}
}
