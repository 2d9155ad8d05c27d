package graphfake

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// OpListHires lists users by hire date, an advanced query:
// GET /v1.0/users?$filter=employeeHireDate ge ... and employeeHireDate le ...&$count=true with
// header ConsistencyLevel: eventual.
const OpListHires = "listHires"

// SetHireDate records a user's employeeHireDate, as HR provisioning (Workday, SuccessFactors,
// an inbound SCIM app) fills it in Entra ID; the zero time clears it.
func (s *Server) SetHireDate(userID string, hired time.Time) {
	s.changeUser(userID, func(u *User) { u.HireDate = hired.UTC() })
}

// SetAccountEnabled sets a user's accountEnabled: HR-provisioned accounts are often created
// disabled and enabled on day one.
func (s *Server) SetAccountEnabled(userID string, enabled bool) {
	s.changeUser(userID, func(u *User) { u.Disabled = !enabled })
}

func (s *Server) changeUser(userID string, change func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(userID)
	if u, ok := s.users[key]; ok {
		change(&u)
		s.users[key] = u
	}
}

// isHireQuery reports whether a users listing filters on employeeHireDate.
func isHireQuery(r *http.Request) bool {
	return strings.Contains(strings.ToLower(r.URL.Query().Get("$filter")), "employeehiredate")
}

// hireClause is one comparison in a hire-date filter: employeeHireDate ge 2026-12-07T00:00:00Z.
// Graph's user resource lists eq, ne, not, ge, le and in for employeeHireDate; the fake takes the
// comparisons tapbot may use and refuses the rest (gt and lt among them).
var hireClause = regexp.MustCompile(`(?i)^\s*employeeHireDate\s+(ge|le|eq)\s+(\S+)\s*$`)

// listHires serves the hire-date query as Microsoft Graph does. employeeHireDate supports $filter
// only as an advanced query: without ConsistencyLevel: eventual and $count=true Graph answers 400
// Request_UnsupportedQuery, and $expand is not supported with advanced queries. DateTimeOffset
// values are unquoted ISO 8601 with a zone; a quoted value or a bare date is refused with the
// message Graph gives. employeeHireDate and accountEnabled are returned only when $select names
// them. Pages follow @odata.nextLink (Options.PageSize), which needs the header again.
func (s *Server) listHires(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	advanced := strings.EqualFold(strings.TrimSpace(r.Header.Get("ConsistencyLevel")), "eventual") &&
		strings.EqualFold(q.Get("$count"), "true")
	if !advanced {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
			"Unsupported or invalid query filter clause specified for property 'employeeHireDate' of resource 'User'.", "")
		return
	}
	if q.Has("$expand") {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
			"Expand is not supported with advanced queries (ConsistencyLevel: eventual).", "")
		return
	}
	var after, before []func(time.Time) bool
	for _, part := range regexp.MustCompile(`(?i)\s+and\s+`).Split(q.Get("$filter"), -1) {
		m := hireClause.FindStringSubmatch(part)
		if m == nil {
			s.violation("hire-date query with an unsupported clause %q", part)
			s.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
				"Unsupported or invalid query filter clause specified for property 'employeeHireDate' of resource 'User'.", "")
			return
		}
		t, err := time.Parse(time.RFC3339, m[2])
		if err != nil {
			s.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery",
				"The type of the value doesn't match the property whose type is DateTime", "")
			return
		}
		switch strings.ToLower(m[1]) {
		case "ge":
			after = append(after, func(h time.Time) bool { return !h.Before(t) })
		case "le":
			before = append(before, func(h time.Time) bool { return !h.After(t) })
		case "eq":
			after = append(after, func(h time.Time) bool { return h.Equal(t) })
		}
	}
	props, ok := s.userSelection(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	var all []User
	for _, u := range s.users {
		hired := u.HireDate
		if hired.IsZero() ||
			slices.ContainsFunc(after, func(f func(time.Time) bool) bool { return !f(hired) }) ||
			slices.ContainsFunc(before, func(f func(time.Time) bool) bool { return !f(hired) }) {
			continue
		}
		all = append(all, u)
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	items := make([]any, 0, len(all))
	for _, u := range all {
		items = append(items, userJSON(u, props))
	}
	s.writePage(w, r, metadataURL+"#users", items)
}
