package graphfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// This file is the part of the directory that tells whether a user is privileged, and who their
// manager is: managers (users or organizational contacts), directory role assignments (to users
// and to role-assignable groups) and group membership, nested or not.

// builtInRoles maps the display names of some built-in Entra ID roles to their template IDs, which
// are the same in every tenant, so role assignments the fake returns look like a real tenant's.
// Other names become custom roles with fresh IDs.
var builtInRoles = map[string]string{
	"global administrator":                    "62e90394-69f5-4237-9190-012177145e10",
	"privileged role administrator":           "e8611ab8-c189-46e8-94e1-60213ab1f814",
	"privileged authentication administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
	"user administrator":                      "fe930be7-5e62-47db-91af-98c3a49a38b1",
	"helpdesk administrator":                  "729827e3-9c14-49f7-bb1b-9608f156bbb8",
	"authentication administrator":            "c4e39bd9-1100-46d3-8c65-fb160da0071f",
	"security administrator":                  "194ae4cb-b126-40b2-bd5b-6091b380977d",
	"exchange administrator":                  "29232cdf-9323-42fd-ade2-1d097af3e4de",
	"global reader":                           "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
	"directory readers":                       "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
}

// checkMemberGroupsLimit is how many group IDs Graph accepts in one checkMemberGroups call.
const checkMemberGroupsLimit = 20

type roleDefinition struct {
	ID          string
	DisplayName string
	BuiltIn     bool
}

type roleAssignment struct {
	ID               string
	PrincipalID      string
	RoleDefinitionID string
}

type group struct {
	ID string
	// RoleAssignable is isAssignableToRole: only such groups can hold directory roles.
	RoleAssignable bool
	members        map[string]bool // lower-case object IDs of member users and groups
}

// SetManager makes managerID (a user the fake knows, or a contact from AddContact) the user's
// manager; an empty managerID removes the manager, so Graph answers 404 as it does for a user
// without one.
func (s *Server) SetManager(userID, managerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if managerID == "" {
		delete(s.managers, strings.ToLower(userID))
		return
	}
	s.managers[strings.ToLower(userID)] = managerID
}

// AddContact adds an organizational contact and returns its ID. Entra ID allows a contact as a
// user's manager, and Graph then returns an orgContact rather than a user.
func (s *Server) AddContact(displayName string) string {
	id := newGUID()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contacts[id] = displayName
	return id
}

// AssignRole gives the user an active, tenant-wide assignment of the directory role named
// roleName, creating the role definition on first use (built-in roles keep their real template
// IDs), and returns the assignment's ID.
func (s *Server) AssignRole(userID, roleName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assignRoleLocked(userID, roleName)
}

// AssignRoleToGroup assigns a directory role to a group, which makes every direct member of the
// group hold the role. The group is created if needed and becomes role-assignable (in Entra ID
// that is fixed when a group is created; here it is set by the first assignment, for brevity).
func (s *Server) AssignRoleToGroup(groupID, roleName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(groupID)
	g.RoleAssignable = true
	for m := range g.members {
		s.checkNestingLocked(g, m)
	}
	return s.assignRoleLocked(g.ID, roleName)
}

// AddGroup creates the group if needed and adds members to it: users or other groups, whose
// members then belong to this group transitively. As in Entra ID, a role-assignable group cannot
// contain groups; trying records a violation, since a test relying on it would prove nothing.
func (s *Server) AddGroup(groupID string, memberIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(groupID)
	for _, m := range memberIDs {
		key := strings.ToLower(m)
		g.members[key] = true
		s.checkNestingLocked(g, key)
	}
}

func (s *Server) checkNestingLocked(g *group, member string) {
	if _, isGroup := s.groups[member]; isGroup && g.RoleAssignable {
		s.violations = append(s.violations, fmt.Sprintf(
			"test setup: group %s is role-assignable and cannot contain group %s in Entra ID", g.ID, member))
	}
}

func (s *Server) groupLocked(id string) *group {
	key := strings.ToLower(id)
	g, ok := s.groups[key]
	if !ok {
		g = &group{ID: id, members: make(map[string]bool)}
		s.groups[key] = g
	}
	return g
}

func (s *Server) assignRoleLocked(principalID, roleName string) string {
	key := strings.ToLower(strings.TrimSpace(roleName))
	def, ok := s.roleDefinitions[key]
	if !ok {
		id, builtIn := builtInRoles[key]
		if !builtIn {
			id = newGUID()
		}
		def = &roleDefinition{ID: id, DisplayName: roleName, BuiltIn: builtIn}
		s.roleDefinitions[key] = def
	}
	a := roleAssignment{ID: newAssignmentID(), PrincipalID: principalID, RoleDefinitionID: def.ID}
	s.roleAssignments = append(s.roleAssignments, a)
	return a.ID
}

// newAssignmentID looks like Entra's role assignment IDs: URL-safe base64 with a "-1" suffix.
func newAssignmentID() string {
	return base64.RawURLEncoding.EncodeToString([]byte(newGUID()[:32])) + "-1"
}

// transitiveGroupsLocked returns the lower-case IDs of every group id belongs to, directly or
// through nested groups. Membership cycles (which Entra ID forbids) cannot loop it.
func (s *Server) transitiveGroupsLocked(id string) map[string]bool {
	in := make(map[string]bool)
	frontier := []string{strings.ToLower(id)}
	for len(frontier) > 0 {
		x := frontier[0]
		frontier = frontier[1:]
		for key, g := range s.groups {
			if g.members[x] && !in[key] {
				in[key] = true
				frontier = append(frontier, key)
			}
		}
	}
	return in
}

func (s *Server) getManager(w http.ResponseWriter, r *http.Request, key string) {
	props, ok := s.userSelection(w, r)
	if !ok {
		return
	}
	u, ok := s.lockUser(w, r, key)
	if !ok {
		return
	}
	var answer map[string]any
	if mid, has := s.managers[strings.ToLower(u.ID)]; has {
		if m, isUser := s.users[strings.ToLower(mid)]; isUser {
			answer = userJSON(m, props)
			answer["@odata.type"] = "#microsoft.graph.user"
		} else if name, isContact := s.contacts[strings.ToLower(mid)]; isContact {
			answer = map[string]any{"@odata.type": "#microsoft.graph.orgContact", "id": mid, "displayName": name, "mail": nil}
		}
	}
	s.mu.Unlock()
	if answer == nil {
		// A user without a manager, or whose manager was deleted, is what Graph answers 404 for.
		s.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
			"Resource 'manager' does not exist or one of its queried reference-property objects are not present.", "")
		return
	}
	answer["@odata.context"] = metadataURL + "#directoryObjects/$entity"
	s.writeGraphJSON(w, r, http.StatusOK, answer)
}

// principalFilter is the only role assignment filter tapbot needs; listing a whole tenant's
// assignments would be slow and is not what a per-user check should do.
var principalFilter = regexp.MustCompile(`(?i)^\s*principalId\s+eq\s+'((?:[^']|'')*)'\s*$`)

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m := principalFilter.FindStringSubmatch(q.Get("$filter"))
	if m == nil {
		s.violation("listRoles with $filter %q (want principalId eq '...')", q.Get("$filter"))
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+q.Get("$filter"), "")
		return
	}
	principal := strings.ReplaceAll(m[1], "''", "'")
	withDefinition := false
	for _, e := range strings.Split(q.Get("$expand"), ",") {
		switch strings.ToLower(strings.TrimSpace(e)) {
		case "":
		case "roledefinition":
			withDefinition = true
		default:
			s.violation("listRoles with unsupported $expand %q", e)
			s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest",
				fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.unifiedRoleAssignment'.", e), "")
			return
		}
	}
	s.mu.Lock()
	byID := make(map[string]*roleDefinition, len(s.roleDefinitions))
	for _, d := range s.roleDefinitions {
		byID[d.ID] = d
	}
	var items []any
	for _, a := range s.roleAssignments {
		if !strings.EqualFold(a.PrincipalID, principal) {
			continue
		}
		item := map[string]any{
			"id":               a.ID,
			"principalId":      a.PrincipalID,
			"directoryScopeId": "/",
			"roleDefinitionId": a.RoleDefinitionID,
			"condition":        nil,
		}
		if d := byID[a.RoleDefinitionID]; withDefinition && d != nil {
			item["roleDefinition"] = map[string]any{
				"id":              d.ID,
				"templateId":      d.ID,
				"displayName":     d.DisplayName,
				"description":     "Can manage " + strings.ToLower(d.DisplayName) + " features.",
				"isBuiltIn":       d.BuiltIn,
				"isEnabled":       true,
				"resourceScopes":  []string{"/"},
				"version":         "1",
				"rolePermissions": []any{map[string]any{"allowedResourceActions": []string{"microsoft.directory/users/basic/update"}, "condition": nil}},
			}
		}
		items = append(items, item)
	}
	s.mu.Unlock()
	ctx := metadataURL + "#roleManagement/directory/roleAssignments"
	if withDefinition {
		ctx += "(roleDefinition())"
	}
	s.writePage(w, r, ctx, items)
}

var roleGroupFilter = regexp.MustCompile(`(?i)^\s*isAssignableToRole\s+eq\s+true\s*$`)

func (s *Server) listRoleGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !roleGroupFilter.MatchString(q.Get("$filter")) {
		s.violation("listing groups with $filter %q (the fake only lists role-assignable groups)", q.Get("$filter"))
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+q.Get("$filter"), "")
		return
	}
	if strings.EqualFold(q.Get("$count"), "true") && !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
		s.violation("listing groups with $count=true but without ConsistencyLevel: eventual")
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
			"The specified query is not supported without the ConsistencyLevel header set to eventual.", "")
		return
	}
	s.mu.Lock()
	var ids []string
	for _, g := range s.groups {
		if g.RoleAssignable {
			ids = append(ids, g.ID)
		}
	}
	s.mu.Unlock()
	sort.Strings(ids) // a stable order, so pages do not overlap
	items := make([]any, len(ids))
	for i, id := range ids {
		items[i] = map[string]any{"id": id}
	}
	s.writePage(w, r, metadataURL+"#groups(id)", items)
}

func (s *Server) checkGroups(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.violation("checkGroups with Content-Type %q", r.Header.Get("Content-Type"))
		s.writeGraphError(w, r, http.StatusUnsupportedMediaType, "BadRequest", "Content-Type must be application/json.", "")
		return
	}
	var req struct {
		GroupIDs *[]string `json:"groupIds"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.GroupIDs == nil {
		s.violation("checkGroups body is not {\"groupIds\": [...]} (%d bytes)", len(body))
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid request payload: groupIds is required.", "")
		return
	}
	ids := *req.GroupIDs
	if len(ids) > checkMemberGroupsLimit {
		s.violation("checkGroups with %d group IDs (Graph accepts at most %d)", len(ids), checkMemberGroupsLimit)
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest",
			fmt.Sprintf("The number of groupIds (%d) exceeds the maximum of %d.", len(ids), checkMemberGroupsLimit), "")
		return
	}
	u, ok := s.lockUser(w, r, key)
	if !ok {
		return
	}
	in := s.transitiveGroupsLocked(u.ID)
	s.mu.Unlock()
	value := []string{}
	for _, id := range ids {
		if in[strings.ToLower(id)] {
			value = append(value, id)
		}
	}
	s.writeGraphJSON(w, r, http.StatusOK, map[string]any{
		"@odata.context": metadataURL + "#Collection(Edm.String)",
		"value":          value,
	})
}

// writePage answers a list request with one page of items and, when more remain, an
// @odata.nextLink on the host the client called, carrying the other query options and a
// $skiptoken, as Graph does. $count=true adds @odata.count.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, odataContext string, items []any) {
	s.writePageSized(w, r, odataContext, items, s.opts.PageSize)
}

// writePageSized is writePage with pages of at most pageSize items (no cap when <= 0).
func (s *Server) writePageSized(w http.ResponseWriter, r *http.Request, odataContext string, items []any, pageSize int) {
	q := r.URL.Query()
	size := 100
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid page size specified: '"+t+"'. Must be between 1 and 999 inclusive.", "")
			return
		}
		size = n
	}
	if pageSize > 0 && size > pageSize {
		size = pageSize
	}
	start := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		n, convErr := strconv.Atoi(strings.TrimPrefix(string(raw), "offset:"))
		if err != nil || convErr != nil || n < 0 || n > len(items) {
			s.violation("list request with a $skiptoken the fake never issued: %q", tok)
			s.writeGraphError(w, r, http.StatusBadRequest, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.", "")
			return
		}
		start = n
	}
	end := min(start+size, len(items))
	page := items[start:end]
	if page == nil {
		page = []any{}
	}
	out := map[string]any{"@odata.context": odataContext, "value": page}
	if strings.EqualFold(q.Get("$count"), "true") {
		out["@odata.count"] = len(items)
	}
	if end < len(items) {
		q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte("offset:"+strconv.Itoa(end))))
		out["@odata.nextLink"] = "https://" + r.Host + r.URL.Path + "?" + q.Encode()
	}
	s.writeGraphJSON(w, r, http.StatusOK, out)
}
