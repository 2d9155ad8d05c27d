package graphfake

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	metadataURL     = "https://graph.microsoft.com/v1.0/$metadata"
	graphJSONType   = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	tapODataType    = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
	tapConfigOData  = "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
	maxRequestBytes = 1 << 20
)

// graphRoute names the operation of a Graph request, or "" when the fake does not implement it.
// userKey is the user segment and itemID the authentication method's ID, when the path has them.
func graphRoute(method string, segs []string) (op, userKey, itemID string) {
	eq := strings.EqualFold
	isTAP := len(segs) >= 4 && eq(segs[0], "users") && eq(segs[2], "authentication") && eq(segs[3], "temporaryAccessPassMethods")
	switch {
	case len(segs) == 1 && eq(segs[0], "users") && method == http.MethodGet:
		return OpFindUsers, "", ""
	case len(segs) == 2 && eq(segs[0], "users") && method == http.MethodGet:
		return OpGetUser, segs[1], ""
	case isTAP && len(segs) == 4:
		switch method {
		case http.MethodGet:
			return OpListPasses, segs[1], ""
		case http.MethodPost:
			return OpCreatePass, segs[1], ""
		}
	case len(segs) == 4 && eq(segs[0], "users") && eq(segs[2], "authentication") && eq(segs[3], "methods") && method == http.MethodGet:
		return OpListMethods, segs[1], ""
	case isTAP && len(segs) == 5 && method == http.MethodDelete:
		return OpDeletePass, segs[1], segs[4]
	case len(segs) == 4 && eq(segs[0], "policies") && eq(segs[1], "authenticationMethodsPolicy") &&
		eq(segs[2], "authenticationMethodConfigurations") && eq(segs[3], "TemporaryAccessPass") && method == http.MethodGet:
		return OpGetPolicy, "", ""
	case len(segs) == 3 && eq(segs[0], "users") && eq(segs[2], "manager") && method == http.MethodGet:
		return OpGetManager, segs[1], ""
	case len(segs) == 3 && eq(segs[0], "users") && eq(segs[2], "checkMemberGroups") && method == http.MethodPost:
		return OpCheckGroups, segs[1], ""
	case len(segs) == 3 && eq(segs[0], "roleManagement") && eq(segs[1], "directory") && eq(segs[2], "roleAssignments") &&
		method == http.MethodGet:
		return OpListRoles, "", ""
	case len(segs) == 1 && eq(segs[0], "groups") && method == http.MethodGet:
		return OpListRoleGroups, "", ""
	case len(segs) == 2 && eq(segs[0], "auditLogs") && eq(segs[1], "directoryAudits") && method == http.MethodGet:
		return OpListAudits, "", ""
	}
	return "", "", ""
}

func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request, segs []string) {
	op, userKey, itemID := graphRoute(r.Method, segs)
	if op == OpFindUsers && isHireQuery(r) {
		op = OpListHires
	}
	if op == "" {
		s.violation("unexpected Graph request %s %s", r.Method, r.URL.Path)
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("Resource not found for the segment '%s'.", lastSegment(segs)), "")
		return
	}
	s.enter(op)
	defer s.leave(op)
	if !s.validToken(r) {
		s.mu.Lock()
		s.calls[op]++
		s.mu.Unlock()
		s.violation("%s without a valid bearer token (Authorization %q)", op, redactAuth(r.Header.Get("Authorization")))
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		s.writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.", "")
		return
	}
	body, ok := s.readBody(w, r, op)
	if !ok {
		s.mu.Lock()
		s.calls[op]++
		s.mu.Unlock()
		return
	}
	if !s.begin(r, op, true) {
		return
	}
	if f := s.takeFailure(op); f != nil {
		code, msg := failureText(op, f.status)
		s.writeGraphError(w, r, f.status, code, msg, f.retryAfter)
		return
	}
	// Graph refuses a call that none of the app's granted permissions allows; that is the
	// tenant's configuration, not a client mistake, so it is no violation.
	if roles, _ := s.tokenRoles(r); !allowed(op, roles) {
		code, msg := failureText(op, http.StatusForbidden)
		s.writeGraphError(w, r, http.StatusForbidden, code, msg, "")
		return
	}
	appID := s.tokenApp(r)
	switch op {
	case OpGetUser:
		s.getUser(w, r, userKey)
	case OpFindUsers:
		s.findUsers(w, r)
	case OpListHires:
		s.listHires(w, r)
	case OpListPasses:
		s.listPasses(w, r, userKey)
	case OpCreatePass:
		s.createPass(w, r, userKey, body, appID)
	case OpDeletePass:
		s.deletePass(w, r, userKey, itemID, appID)
	case OpGetPolicy:
		s.getPolicy(w, r)
	case OpGetManager:
		s.getManager(w, r, userKey)
	case OpListRoles:
		s.listRoles(w, r)
	case OpListRoleGroups:
		s.listRoleGroups(w, r)
	case OpCheckGroups:
		s.checkGroups(w, r, userKey, body)
	case OpListMethods:
		s.listMethods(w, r, userKey)
	case OpListAudits:
		s.listAudits(w, r, appID)
	}
}

// readBody reads the request body, insisting that a body labelled gzip really is gzip: the Graph
// SDK's compression and retry middlewares can disagree about the label after a retry.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, op string) ([]byte, bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		s.violation("%s: reading body: %v", op, err)
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "The request body could not be read.", "")
		return nil, false
	}
	if len(raw) > maxRequestBytes {
		s.writeGraphError(w, r, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is too large.", "")
		return nil, false
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return raw, true
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			var plain []byte
			plain, err = io.ReadAll(io.LimitReader(zr, maxRequestBytes))
			if err == nil {
				return plain, true
			}
		}
		s.violation("%s: body labelled Content-Encoding: gzip is not gzip (%d bytes, starts %q)", op, len(raw), prefix(raw, 12))
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "The request body could not be decompressed.", "")
		return nil, false
	default:
		s.violation("%s: unsupported Content-Encoding %q", op, enc)
		s.writeGraphError(w, r, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The content encoding is not supported.", "")
		return nil, false
	}
}

// lockUser takes s.mu and finds the user the path names; when there is none it answers 404 and
// returns with s.mu released. On success the caller holds s.mu and must release it.
func (s *Server) lockUser(w http.ResponseWriter, r *http.Request, key string) (User, bool) {
	s.mu.Lock()
	u, ok := s.findUserLocked(key)
	if !ok {
		s.mu.Unlock()
		s.userNotFound(w, r, key)
	}
	return u, ok
}

func (s *Server) findUserLocked(key string) (User, bool) {
	if u, ok := s.users[strings.ToLower(key)]; ok {
		return u, true
	}
	for _, u := range s.users {
		if strings.EqualFold(u.UPN, key) {
			return u, true
		}
	}
	return User{}, false
}

func (s *Server) userNotFound(w http.ResponseWriter, r *http.Request, key string) {
	s.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", key), "")
}

// userDefaultProperties is the property set Graph v1.0 returns for a user without $select
// (Microsoft Graph docs, "user resource type": "By default, only a limited set of properties
// are returned"). accountEnabled, userType and proxyAddresses are not in it: a client that
// needs them must $select them, and one that forgets reads them as absent.
var userDefaultProperties = []string{"businessPhones", "displayName", "givenName", "id", "jobTitle",
	"mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName"}

// userProperties is every user property the fake knows, keyed by its lowercased name, with the
// spelling Graph uses. A $select of anything else is refused, as Graph refuses it.
var userProperties = func() map[string]string {
	m := map[string]string{}
	for _, p := range append([]string{"accountEnabled", "userType", "proxyAddresses", "employeeHireDate"}, userDefaultProperties...) {
		m[strings.ToLower(p)] = p
	}
	return m
}()

// userSelection is the properties a request's $select asks for, in Graph's spelling, or the
// default set when it has none; ok is false (and a 400 was written) for an unknown property.
func (s *Server) userSelection(w http.ResponseWriter, r *http.Request) (props []string, ok bool) {
	raw := strings.TrimSpace(r.URL.Query().Get("$select"))
	if raw == "" {
		return userDefaultProperties, true
	}
	for _, f := range strings.Split(raw, ",") {
		name, known := userProperties[strings.ToLower(strings.TrimSpace(f))]
		if !known {
			s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest",
				fmt.Sprintf("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.user'.", strings.TrimSpace(f)), "")
			return nil, false
		}
		props = append(props, name)
	}
	return props, true
}

// userJSON renders u with only the properties props names, as Graph does: a property not
// selected is absent, a selected one without a value is null.
func userJSON(u User, props []string) map[string]any {
	userType := u.UserType
	if userType == "" {
		userType = "Member"
	}
	var mail any
	if u.Mail != "" {
		mail = u.Mail
	}
	var hired any
	if !u.HireDate.IsZero() {
		hired = u.HireDate.UTC().Format(time.RFC3339)
	}
	all := map[string]any{
		"id": u.ID, "userPrincipalName": u.UPN, "displayName": u.DisplayName, "mail": mail, "employeeHireDate": hired,
		"accountEnabled": !u.Disabled, "userType": userType,
		"proxyAddresses": append([]string{}, u.ProxyAddresses...), "businessPhones": []string{},
		"givenName": nil, "surname": nil, "jobTitle": nil, "mobilePhone": nil, "officeLocation": nil, "preferredLanguage": nil,
	}
	out := make(map[string]any, len(props)+1)
	for _, p := range props {
		out[p] = all[p]
	}
	return out
}

// selectContext is the @odata.context Graph gives a user answer: the selected properties in
// parentheses, or none for the default set.
func selectContext(base string, r *http.Request, props []string) string {
	if strings.TrimSpace(r.URL.Query().Get("$select")) == "" {
		return base
	}
	return base + "(" + strings.Join(props, ",") + ")"
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, key string) {
	props, ok := s.userSelection(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	u, ok := s.findUserLocked(key)
	s.mu.Unlock()
	if !ok {
		s.userNotFound(w, r, key)
		return
	}
	j := userJSON(u, props)
	j["@odata.context"] = selectContext(metadataURL+"#users", r, props) + "/$entity"
	s.writeGraphJSON(w, r, http.StatusOK, j)
}

// filterClause matches `mail eq '...'` or `userPrincipalName eq '...'`; a quote inside the
// literal is doubled, as OData requires.
var filterClause = regexp.MustCompile(`(?i)^\s*(mail|userPrincipalName)\s+eq\s+'((?:[^']|'')*)'\s*`)

// proxyClause matches `proxyAddresses/any(p:p eq '...')`. proxyAddresses is multi-valued, so
// Graph takes it only through the any lambda, whose range variable must be the one compared;
// eq inside it works by default, without the advanced query parameters (Microsoft Graph docs,
// "Advanced query capabilities on directory objects": proxyAddresses, eq, default).
var proxyClause = regexp.MustCompile(`(?i)^\s*proxyAddresses/any\(\s*([a-z]\w*)\s*:\s*([a-z]\w*)\s+eq\s+'((?:[^']|'')*)'\s*\)\s*`)

// parseFilter understands clauses joined by "or", which is all tapbot needs; anything else is a
// 400 as Graph would give for a filter it cannot evaluate. Clauses on proxyAddresses come back
// under "proxyaddresses", their literal whole ("smtp:a@x").
func parseFilter(f string) (map[string][]string, bool) {
	out := map[string][]string{}
	rest := f
	for {
		if m := filterClause.FindStringSubmatch(rest); m != nil {
			prop := strings.ToLower(m[1])
			out[prop] = append(out[prop], strings.ReplaceAll(m[2], "''", "'"))
			rest = rest[len(m[0]):]
		} else if m := proxyClause.FindStringSubmatch(rest); m != nil && m[1] == m[2] {
			out["proxyaddresses"] = append(out["proxyaddresses"], strings.ReplaceAll(m[3], "''", "'"))
			rest = rest[len(m[0]):]
		} else {
			return nil, false
		}
		if strings.TrimSpace(rest) == "" {
			return out, true
		}
		lower := strings.ToLower(rest)
		if !strings.HasPrefix(lower, "or ") {
			return nil, false
		}
		rest = rest[3:]
	}
}

func (s *Server) findUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := q.Get("$filter")
	if f == "" {
		s.violation("listing all users without $filter")
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "tapbot's fake only supports filtered user queries.", "")
		return
	}
	clauses, ok := parseFilter(f)
	if !ok {
		s.violation("unsupported $filter %q", f)
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid filter clause: %s", f), "")
		return
	}
	top := 100
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid page size specified: '"+t+"'. Must be between 1 and 999 inclusive.", "")
			return
		}
		top = n
	}
	matches := func(u User) bool {
		for _, v := range clauses["mail"] {
			if u.Mail != "" && strings.EqualFold(u.Mail, v) {
				return true
			}
		}
		for _, v := range clauses["userprincipalname"] {
			if strings.EqualFold(u.UPN, v) {
				return true
			}
		}
		// Entra ID compares directory strings without regard to case, so 'smtp:a@x' also
		// finds the primary address stored as "SMTP:a@x".
		for _, v := range clauses["proxyaddresses"] {
			for _, a := range u.ProxyAddresses {
				if strings.EqualFold(a, v) {
					return true
				}
			}
		}
		return false
	}
	props, ok := s.userSelection(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	value := []map[string]any{}
	for _, u := range s.users {
		if matches(u) && len(value) < top {
			value = append(value, userJSON(u, props))
		}
	}
	s.mu.Unlock()
	s.writeGraphJSON(w, r, http.StatusOK, map[string]any{
		"@odata.context": selectContext(metadataURL+"#users", r, props),
		"value":          value,
	})
}

type tapJSON struct {
	ODataType             string  `json:"@odata.type"`
	ID                    string  `json:"id"`
	TemporaryAccessPass   *string `json:"temporaryAccessPass"`
	CreatedDateTime       string  `json:"createdDateTime"`
	StartDateTime         string  `json:"startDateTime"`
	LifetimeInMinutes     int     `json:"lifetimeInMinutes"`
	IsUsableOnce          bool    `json:"isUsableOnce"`
	IsUsable              bool    `json:"isUsable"`
	MethodUsabilityReason string  `json:"methodUsabilityReason"`
}

// graphTime formats like Graph: UTC with seven fractional digits.
func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// usabilityLocked computes isUsable and methodUsabilityReason the way Entra ID reports them.
func (s *Server) usabilityLocked(p *IssuedPass) (bool, string) {
	now := s.now()
	switch {
	case p.Used:
		return false, "OneTimeUsed"
	case !s.policy.Enabled:
		return false, "DisabledByPolicy"
	case now.Before(p.StartsAt):
		return false, "NotYetValid"
	case !now.Before(p.StartsAt.Add(time.Duration(p.LifetimeMinutes) * time.Minute)):
		return false, "Expired"
	}
	return true, "EnabledByPolicy"
}

func (s *Server) tapJSONLocked(p *IssuedPass, withCode bool) tapJSON {
	usable, reason := s.usabilityLocked(p)
	j := tapJSON{
		ODataType:             tapODataType,
		ID:                    p.ID,
		CreatedDateTime:       graphTime(p.CreatedAt),
		StartDateTime:         graphTime(p.StartsAt),
		LifetimeInMinutes:     p.LifetimeMinutes,
		IsUsableOnce:          p.UsableOnce,
		IsUsable:              usable,
		MethodUsabilityReason: reason,
	}
	if withCode {
		c := p.Code
		j.TemporaryAccessPass = &c
	}
	return j
}

func (s *Server) listPasses(w http.ResponseWriter, r *http.Request, key string) {
	u, ok := s.lockUser(w, r, key)
	if !ok {
		return
	}
	value := []tapJSON{}
	if p := s.livePassLocked(u.ID); p != nil {
		// The code is only ever returned by the create call; reads show null.
		value = append(value, s.tapJSONLocked(p, false))
	}
	s.mu.Unlock()
	s.writeGraphJSON(w, r, http.StatusOK, map[string]any{
		"@odata.context": fmt.Sprintf("%s#users('%s')/authentication/temporaryAccessPassMethods", metadataURL, url.PathEscape(u.ID)),
		"value":          value,
	})
}

func (s *Server) createPass(w http.ResponseWriter, r *http.Request, key string, body []byte, appID string) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.violation("createPass with Content-Type %q", r.Header.Get("Content-Type"))
		s.writeGraphError(w, r, http.StatusUnsupportedMediaType, "BadRequest", "Content-Type must be application/json.", "")
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		s.violation("createPass body is not a JSON object (%d bytes)", len(body))
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.", "")
		return
	}
	var req struct {
		ODataType         *string    `json:"@odata.type"`
		LifetimeInMinutes *int       `json:"lifetimeInMinutes"`
		IsUsableOnce      *bool      `json:"isUsableOnce"`
		StartDateTime     *time.Time `json:"startDateTime"`
	}
	for k := range fields {
		switch k {
		case "@odata.type", "lifetimeInMinutes", "isUsableOnce", "startDateTime":
		default:
			s.violation("createPass with unexpected property %q", k)
			s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Property '%s' is read-only or does not exist on type 'microsoft.graph.temporaryAccessPassAuthenticationMethod'.", k), "")
			return
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.violation("createPass body has wrongly typed properties: %v", err)
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid request payload.", "")
		return
	}
	if req.ODataType != nil && *req.ODataType != tapODataType {
		s.violation("createPass with @odata.type %q", *req.ODataType)
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "A type named '"+*req.ODataType+"' could not be resolved by the model.", "")
		return
	}

	u, ok := s.lockUser(w, r, key)
	if !ok {
		return
	}
	pol := s.policy
	lifetime := pol.DefaultLifetimeMinutes
	if req.LifetimeInMinutes != nil {
		lifetime = *req.LifetimeInMinutes
	}
	once := pol.IsUsableOnce
	if req.IsUsableOnce != nil {
		once = *req.IsUsableOnce
	}
	now := s.now()
	start := now
	if req.StartDateTime != nil {
		start = *req.StartDateTime
	}
	var refusal string
	switch {
	case !pol.Enabled:
		refusal = "Temporary Access Pass is not enabled for this user by the authentication methods policy."
	case lifetime < pol.MinLifetimeMinutes || lifetime > pol.MaxLifetimeMinutes:
		refusal = fmt.Sprintf("The lifetimeInMinutes value %d is outside the range allowed by the Temporary Access Pass policy (%d to %d minutes).",
			lifetime, pol.MinLifetimeMinutes, pol.MaxLifetimeMinutes)
	case pol.IsUsableOnce && !once:
		refusal = "The Temporary Access Pass policy only allows one-time passes; isUsableOnce must be true."
	case start.Before(now.Add(-5 * time.Minute)):
		refusal = "The startDateTime of a Temporary Access Pass cannot be in the past."
	}
	if refusal != "" {
		s.mu.Unlock()
		s.writeGraphError(w, r, http.StatusBadRequest, "badRequest", refusal, "")
		return
	}
	p := &IssuedPass{
		ID:              newGUID(),
		UserID:          u.ID,
		Code:            newPassCode(pol.DefaultLength),
		LifetimeMinutes: lifetime,
		UsableOnce:      once,
		CreatedAt:       now,
		StartsAt:        start,
	}
	uid := strings.ToLower(u.ID)
	for _, old := range s.passes[uid] {
		old.Replaced = true
	}
	s.passes[uid] = append(s.passes[uid], p)
	s.logAuditLocked(passRecord(u, p, true, s.ownAppLocked(appID), now, false))
	j := s.tapJSONLocked(p, true)
	s.mu.Unlock()
	w.Header().Set("Location", fmt.Sprintf("https://graph.microsoft.com/v1.0/users/%s/authentication/temporaryAccessPassMethods/%s", u.ID, p.ID))
	s.writeGraphJSON(w, r, http.StatusCreated, struct {
		ODataContext string `json:"@odata.context"`
		tapJSON
	}{fmt.Sprintf("%s#users('%s')/authentication/temporaryAccessPassMethods/$entity", metadataURL, url.PathEscape(u.ID)), j})
}

// livePassLocked is the user's one pass that Graph still lists: the newest, unless it was deleted.
func (s *Server) livePassLocked(userID string) *IssuedPass {
	ps := s.passes[strings.ToLower(userID)]
	if len(ps) == 0 || ps[len(ps)-1].Deleted {
		return nil
	}
	return ps[len(ps)-1]
}

// deletePass removes the user's live pass when passID names it. Anything else (an unknown user, a
// replaced or already deleted pass, an ID that never existed) is a 404, as in Entra ID, where
// replaced and deleted methods no longer exist.
func (s *Server) deletePass(w http.ResponseWriter, r *http.Request, key, passID, appID string) {
	u, ok := s.lockUser(w, r, key)
	if !ok {
		return
	}
	p := s.livePassLocked(u.ID)
	if p == nil || !strings.EqualFold(p.ID, passID) {
		s.mu.Unlock()
		s.writeGraphError(w, r, http.StatusNotFound, "itemNotFound",
			fmt.Sprintf("The temporary access pass authentication method '%s' was not found for the user.", passID), "")
		return
	}
	p.Deleted = true
	s.logAuditLocked(passRecord(u, p, false, s.ownAppLocked(appID), s.now(), false))
	s.mu.Unlock()
	if id := r.Header.Get("client-request-id"); id != "" {
		w.Header().Set("client-request-id", id)
	}
	w.Header().Set("request-id", newGUID())
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := s.policy
	s.mu.Unlock()
	state := "disabled"
	if p.Enabled {
		state = "enabled"
	}
	s.writeGraphJSON(w, r, http.StatusOK, map[string]any{
		"@odata.context":               metadataURL + "#policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity",
		"@odata.type":                  tapConfigOData,
		"id":                           "TemporaryAccessPass",
		"state":                        state,
		"defaultLifetimeInMinutes":     p.DefaultLifetimeMinutes,
		"defaultLength":                p.DefaultLength,
		"minimumLifetimeInMinutes":     p.MinLifetimeMinutes,
		"maximumLifetimeInMinutes":     p.MaxLifetimeMinutes,
		"isUsableOnce":                 p.IsUsableOnce,
		"excludeTargets":               []any{},
		"includeTargets@odata.context": metadataURL + "#policies/authenticationMethodsPolicy/authenticationMethodConfigurations('TemporaryAccessPass')/microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration/includeTargets",
		"includeTargets":               []any{map[string]any{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}},
		"excludeTargets@odata.context": metadataURL + "#policies/authenticationMethodsPolicy/authenticationMethodConfigurations('TemporaryAccessPass')/microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration/excludeTargets",
	})
}

// failureText gives FailNext answers the code and message Graph uses for that status.
func failureText(op string, status int) (string, string) {
	switch status {
	case http.StatusBadRequest:
		if op == OpCreatePass {
			return "badRequest", "The lifetimeInMinutes value is outside the range allowed by the Temporary Access Pass policy."
		}
		return "BadRequest", "Invalid request."
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
	case http.StatusForbidden:
		if op == OpCreatePass || op == OpListPasses || op == OpDeletePass || op == OpGetPolicy || op == OpListMethods {
			return "accessDenied", "Request Authorization failed"
		}
		return "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
	case http.StatusNotFound:
		return "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present."
	case http.StatusConflict:
		return "conflict", "The request conflicts with the current state of the resource."
	case http.StatusTooManyRequests:
		return "TooManyRequests", "Please retry again later."
	case http.StatusInternalServerError:
		return "generalException", "General exception while processing."
	case http.StatusBadGateway:
		return "badGateway", "The server, while acting as a proxy, received a bad response."
	case http.StatusServiceUnavailable:
		return "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."
	case http.StatusGatewayTimeout:
		return "gatewayTimeout", "The server, while acting as a proxy, did not receive a timely response."
	}
	return "UnknownError", http.StatusText(status)
}

// writeGraphError writes an OData error the way Microsoft Graph does, with the request IDs it
// puts in innerError.
func (s *Server) writeGraphError(w http.ResponseWriter, r *http.Request, status int, code, message, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	reqID := newGUID()
	inner := map[string]any{
		"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
		"request-id":        reqID,
		"client-request-id": r.Header.Get("client-request-id"),
	}
	if status == http.StatusTooManyRequests {
		inner["code"] = "429"
		inner["status"] = "429"
		inner["message"] = "Please retry after"
	}
	w.Header().Set("request-id", reqID)
	s.writeGraphJSON(w, r, status, map[string]any{"error": map[string]any{"code": code, "message": message, "innerError": inner}})
}

func (s *Server) writeGraphJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", graphJSONType)
	if id := r.Header.Get("client-request-id"); id != "" {
		h.Set("client-request-id", id)
	}
	if h.Get("request-id") == "" {
		h.Set("request-id", newGUID())
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func lastSegment(segs []string) string {
	if len(segs) == 0 {
		return "v1.0"
	}
	return segs[len(segs)-1]
}

func prefix(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// redactAuth keeps tokens out of violation messages while still showing what kind of header came.
func redactAuth(h string) string {
	if h == "" {
		return ""
	}
	if i := strings.IndexByte(h, ' '); i > 0 {
		return h[:i] + " [redacted]"
	}
	return "[redacted]"
}
