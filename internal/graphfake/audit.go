package graphfake

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is Entra ID's audit log as Microsoft Graph serves it (GET /v1.0/auditLogs/
// directoryAudits): the records the fake writes when a pass is created or deleted through its
// Temporary Access Pass endpoints, records tests add for passes made elsewhere, and what Graph
// enforces on reading them (permission, $filter, paging, the reports throttle, retention and the
// delay before a record shows up).

// Audit log values Entra ID uses for Temporary Access Pass records (Microsoft's audit activity
// reference; the resultReason wording is what real tenants log).
const (
	ActivityRegistered = "Admin registered security info"
	ActivityDeleted    = "Admin deleted security info"
	ServiceAuthMethods = "Authentication Methods"
	CategoryUserMgmt   = "UserManagement"
	ReasonTAPCreated   = "Admin registered temporary access pass method for user"
	ReasonTAPDeleted   = "Admin deleted temporary access pass method for user"
)

// Defaults for the audit log's limits; Options and the Set* methods change them.
const (
	// DefaultAuditPageSize is deliberately small (Graph's own pages are larger), so that every
	// client of the fake follows @odata.nextLink.
	DefaultAuditPageSize = 5
	// DefaultAuditRetention is how long Entra ID keeps audit records in a Free tenant; P1/P2
	// keep 30 days.
	DefaultAuditRetention = 7 * 24 * time.Hour
	// DefaultAuditRequests per DefaultAuditWindow is the reports APIs' throttle: about 5
	// requests per 10 s per app and tenant.
	DefaultAuditRequests = 5
	DefaultAuditWindow   = 10 * time.Second
)

// AuditInitiator is who a record says made the change: a user (UserID, UPN) or an app (AppID,
// AppName, ServicePrincipalID). Exactly one of UserID and AppID should be set.
type AuditInitiator struct {
	UserID             string
	UPN                string
	UserName           string
	AppID              string
	AppName            string
	ServicePrincipalID string
}

// ModifiedProperty is one entry of targetResources[0].modifiedProperties. Entra ID puts
// JSON-quoted strings in the values ("\"2026-12-02T10:00:00Z\""); the fake stores them as given.
type ModifiedProperty struct {
	Name     string
	OldValue string
	NewValue string
}

// AuditRecord is one directoryAudit record.
type AuditRecord struct {
	ID            string    // a fresh ID when empty
	At            time.Time // activityDateTime; the fake's now when zero
	Activity      string    // activityDisplayName
	Service       string    // loggedByService
	Category      string    // UserManagement when empty
	OperationType string    // Add, Delete...
	ResultReason  string
	By            AuditInitiator
	// TargetID and TargetUPN are targetResources[0], the user the record is about.
	TargetID  string
	TargetUPN string
	Modified  []ModifiedProperty
	// Withheld keeps the record out of every answer until DeliverAudit, as Entra ID delivers
	// records late (often minutes, with no bound) while their activityDateTime stays in the past.
	Withheld bool
}

// OutsidePass describes a pass made outside tapbot, for CreatePassOutside.
type OutsidePass struct {
	UserID string
	// By is who made it: an admin in the portal (UserID, UPN) or another app (AppID, AppName).
	By              AuditInitiator
	LifetimeMinutes int  // the policy's default when zero
	UsableOnce      bool // forced on when the policy says so
	// At is when it was made (activityDateTime, CreatedAt and the start); the fake's now when
	// zero. A time in the past makes a record that arrives late.
	At time.Time
	// Late withholds the record until DeliverAudit.
	Late bool
}

// auditState is the audit log and its limits.
type auditState struct {
	records   []*AuditRecord // in logging order
	pageSize  int
	retention time.Duration
	requests  int           // throttle: at most requests per window; <= 0 turns it off
	window    time.Duration //
	delay     time.Duration // records show up this long after their activityDateTime
	served    map[string][]time.Time
	spID      string // the fake's app's service principal ID
	appName   string
}

func newAuditState(opts Options) auditState {
	a := auditState{
		pageSize: DefaultAuditPageSize, retention: DefaultAuditRetention,
		requests: DefaultAuditRequests, window: DefaultAuditWindow,
		delay: opts.AuditDelay, served: map[string][]time.Time{},
		spID: newGUID(), appName: opts.AppDisplayName,
	}
	if opts.AuditPageSize > 0 {
		a.pageSize = opts.AuditPageSize
	}
	if opts.AuditRetention > 0 {
		a.retention = opts.AuditRetention
	}
	if opts.AuditRequests != 0 {
		a.requests = opts.AuditRequests
	}
	if opts.AuditWindow > 0 {
		a.window = opts.AuditWindow
	}
	if a.appName == "" {
		a.appName = "tapbot"
	}
	return a
}

// ServicePrincipalID is the object ID of the fake app's service principal, as audit records of
// its own changes name it.
func (s *Server) ServicePrincipalID() string { return s.audit.spID }

// SetAuditThrottle lets each app make at most n directoryAudits requests per window; more answer
// 429 with Retry-After. n <= 0 turns the throttle off.
func (s *Server) SetAuditThrottle(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit.requests, s.audit.window = n, window
}

// SetAuditRetention sets how long records are kept (7 days in Free tenants, 30 with P1/P2):
// older ones are never returned.
func (s *Server) SetAuditRetention(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit.retention = d
}

// SetAuditDelay makes every record show up d after its activityDateTime, on the fake's clock.
func (s *Server) SetAuditDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit.delay = d
}

// AddAuditRecord logs a record, filling in an ID, the time and the category when empty, and
// returns it as logged.
func (s *Server) AddAuditRecord(rec AuditRecord) AuditRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.logAuditLocked(rec)
}

// DeliverAudit makes a withheld record visible, as a late record finally arriving. It reports
// whether a record had that ID.
func (s *Server) DeliverAudit(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.audit.records {
		if r.ID == id {
			r.Withheld = false
			return true
		}
	}
	return false
}

// AuditRecords returns every record logged, visible or not, in logging order.
func (s *Server) AuditRecords() []AuditRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AuditRecord, 0, len(s.audit.records))
	for _, r := range s.audit.records {
		c := *r
		c.Modified = slices.Clone(r.Modified)
		out = append(out, c)
	}
	return out
}

// CreatePassOutside makes a live pass for the user as an admin in the Entra admin center or
// another app would, replacing the user's previous pass, and logs its "Admin registered security
// info" record naming p.By. tapbot can revoke it like any other. It panics on an unknown user,
// which is a broken test.
func (s *Server) CreatePassOutside(p OutsidePass) (IssuedPass, AuditRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.findUserLocked(p.UserID)
	if !ok {
		panic("graphfake: CreatePassOutside for unknown user " + p.UserID)
	}
	at := p.At
	if at.IsZero() {
		at = s.now()
	}
	lifetime := p.LifetimeMinutes
	if lifetime == 0 {
		lifetime = s.policy.DefaultLifetimeMinutes
	}
	pass := &IssuedPass{ID: newGUID(), UserID: u.ID, Code: newPassCode(s.policy.DefaultLength), LifetimeMinutes: lifetime,
		UsableOnce: p.UsableOnce || s.policy.IsUsableOnce, CreatedAt: at, StartsAt: at}
	uid := strings.ToLower(u.ID)
	for _, old := range s.passes[uid] {
		old.Replaced = true
	}
	s.passes[uid] = append(s.passes[uid], pass)
	rec := s.logAuditLocked(passRecord(u, pass, true, p.By, at, p.Late))
	return *pass, *rec
}

// passRecord is the record Entra ID logs when pass is created or deleted, with the property
// names seen in real events and JSON-quoted values.
func passRecord(u User, p *IssuedPass, created bool, by AuditInitiator, at time.Time, late bool) AuditRecord {
	usage := "MultiUse"
	if p.UsableOnce {
		usage = "OneTime"
	}
	q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	props := []ModifiedProperty{
		{Name: "TemporaryAccessPass.Id", NewValue: q(p.ID)},
		{Name: "TemporaryAccessPass.StartDateTime", NewValue: q(graphTime(p.StartsAt))},
		{Name: "TemporaryAccessPass.EndDateTime", NewValue: q(graphTime(p.StartsAt.Add(time.Duration(p.LifetimeMinutes) * time.Minute)))},
		{Name: "TemporaryAccessPass.AccessPassUsage", NewValue: q(usage)},
	}
	rec := AuditRecord{At: at, Activity: ActivityRegistered, Service: ServiceAuthMethods, OperationType: "Add",
		ResultReason: ReasonTAPCreated, By: by, TargetID: u.ID, TargetUPN: u.UPN, Withheld: late}
	if !created {
		rec.Activity, rec.OperationType, rec.ResultReason = ActivityDeleted, "Delete", ReasonTAPDeleted
		for i := range props {
			props[i].OldValue, props[i].NewValue = props[i].NewValue, ""
		}
	}
	rec.Modified = props
	return rec
}

func (s *Server) logAuditLocked(rec AuditRecord) *AuditRecord {
	if rec.ID == "" {
		// Entra ID's record IDs name the service and a correlation: "Directory_..." or, for
		// authentication methods, an opaque GUID-like value. Opaque is what clients may rely on.
		rec.ID = "AuthMethods_" + strings.ToUpper(strings.ReplaceAll(newGUID(), "-", "")[:20]) + "_" + strconv.Itoa(len(s.audit.records)+1)
	}
	if rec.At.IsZero() {
		rec.At = s.now()
	}
	if rec.Category == "" {
		rec.Category = CategoryUserMgmt
	}
	rec.Modified = slices.Clone(rec.Modified)
	r := &rec
	s.audit.records = append(s.audit.records, r)
	return r
}

// ownAppLocked is the initiator of changes the fake's own app makes through its endpoints.
func (s *Server) ownAppLocked(appID string) AuditInitiator {
	return AuditInitiator{AppID: appID, AppName: s.audit.appName, ServicePrincipalID: s.audit.spID}
}

// auditProps are the properties directoryAudits can filter on, with the operators Graph
// supports for each (List directoryAudits: $filter eq, ge, le, startswith). Others, resultReason
// among them, are refused.
var auditProps = map[string][]string{
	"activitydatetime":    {"ge", "le"},
	"activitydisplayname": {"eq"},
	"loggedbyservice":     {"eq"},
	"category":            {"eq"},
	"id":                  {"eq"},
	"correlationid":       {"eq"},
}

// auditCond is a parsed $filter: a clause, or and/or of two conditions.
type auditCond struct {
	op          string // "and", "or", or the comparison operator
	left, right *auditCond
	prop        string // lower case
	text        string
	at          time.Time
}

func (c *auditCond) match(r *AuditRecord) bool {
	switch c.op {
	case "and":
		return c.left.match(r) && c.right.match(r)
	case "or":
		return c.left.match(r) || c.right.match(r)
	case "ge":
		return !r.At.Before(c.at)
	case "le":
		return !r.At.After(c.at)
	}
	var v string
	switch c.prop {
	case "activitydisplayname":
		v = r.Activity
	case "loggedbyservice":
		v = r.Service
	case "category":
		v = r.Category
	case "id":
		v = r.ID
	}
	return strings.EqualFold(v, c.text)
}

// filterToken splits a $filter into words, parentheses and quoted literals (” is a quote).
var filterToken = regexp.MustCompile(`\s*(\(|\)|'(?:[^']|'')*'|[^\s()']+)`)

type filterParser struct {
	toks []string
	pos  int
	err  string
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *filterParser) next() string { t := p.peek(); p.pos++; return t }

// parseAuditFilter parses clauses joined by and/or, with parentheses; "and" binds tighter.
func parseAuditFilter(f string) (*auditCond, string) {
	rest := f
	var toks []string
	for strings.TrimSpace(rest) != "" {
		m := filterToken.FindStringSubmatchIndex(rest)
		if m == nil || m[0] != 0 {
			return nil, "Invalid filter clause"
		}
		toks = append(toks, rest[m[2]:m[3]])
		rest = rest[m[1]:]
	}
	p := &filterParser{toks: toks}
	c := p.or()
	if p.err == "" && p.pos != len(p.toks) {
		p.err = "Syntax error at position " + strconv.Itoa(p.pos) + " in '" + f + "'."
	}
	if p.err != "" {
		return nil, p.err
	}
	return c, ""
}

func (p *filterParser) or() *auditCond {
	c := p.and()
	for p.err == "" && strings.EqualFold(p.peek(), "or") {
		p.next()
		c = &auditCond{op: "or", left: c, right: p.and()}
	}
	return c
}

func (p *filterParser) and() *auditCond {
	c := p.term()
	for p.err == "" && strings.EqualFold(p.peek(), "and") {
		p.next()
		c = &auditCond{op: "and", left: c, right: p.term()}
	}
	return c
}

func (p *filterParser) term() *auditCond {
	if p.err != "" {
		return nil
	}
	if p.peek() == "(" {
		p.next()
		c := p.or()
		if p.err == "" && p.next() != ")" {
			p.err = "Invalid filter clause: ')' expected."
		}
		return c
	}
	prop, op, lit := p.next(), strings.ToLower(p.next()), p.next()
	if prop == "" || op == "" || lit == "" {
		p.err = "Invalid filter clause"
		return nil
	}
	ops, known := auditProps[strings.ToLower(prop)]
	if !known {
		p.err = fmt.Sprintf("Invalid filter clause: filtering on property '%s' is not supported.", prop)
		return nil
	}
	if !slices.Contains(ops, op) {
		p.err = fmt.Sprintf("Invalid filter clause: operator '%s' is not supported on property '%s'.", op, prop)
		return nil
	}
	c := &auditCond{op: op, prop: strings.ToLower(prop)}
	if c.prop == "activitydatetime" {
		// A DateTimeOffset literal is unquoted in OData.
		t, err := time.Parse(time.RFC3339Nano, lit)
		if err != nil {
			t, err = time.Parse("2006-01-02", lit)
		}
		if err != nil {
			p.err = fmt.Sprintf("Invalid filter clause: '%s' is not a valid DateTimeOffset.", lit)
			return nil
		}
		c.at = t
		return c
	}
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		p.err = fmt.Sprintf("Invalid filter clause: '%s' is not a string literal.", lit)
		return nil
	}
	c.text = strings.ReplaceAll(lit[1:len(lit)-1], "''", "'")
	return c
}

// throttleAuditLocked records a directoryAudits request by appID and returns how long to wait
// when it is over the reports throttle, or 0. Refused requests do not count, so a client that
// waits Retry-After out gets through.
func (s *Server) throttleAuditLocked(appID string) time.Duration {
	a := &s.audit
	if a.requests <= 0 || a.window <= 0 {
		return 0
	}
	now := time.Now() // the throttle runs on the real clock, as the client's Retry-After wait does
	kept := a.served[appID][:0]
	for _, t := range a.served[appID] {
		if now.Sub(t) < a.window {
			kept = append(kept, t)
		}
	}
	a.served[appID] = kept
	if len(kept) >= a.requests {
		return a.window - now.Sub(kept[0])
	}
	a.served[appID] = append(kept, now)
	return 0
}

func (s *Server) listAudits(w http.ResponseWriter, r *http.Request, appID string) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "$filter", "$top", "$skiptoken", "$orderby":
		default:
			s.violation("listAudits with unsupported query option %q", k)
			s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest",
				fmt.Sprintf("Query option '%s' is not supported on directoryAudits.", k), "")
			return
		}
	}
	var cond *auditCond
	if f := q.Get("$filter"); f != "" {
		c, msg := parseAuditFilter(f)
		if msg != "" {
			s.violation("listAudits with $filter %q: %s", f, msg)
			s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", msg, "")
			return
		}
		cond = c
	}
	asc := false // Graph lists the newest records first unless asked otherwise
	switch o := strings.ToLower(strings.Join(strings.Fields(q.Get("$orderby")), " ")); o {
	case "", "activitydatetime desc":
	case "activitydatetime", "activitydatetime asc":
		asc = true
	default:
		s.violation("listAudits with $orderby %q", q.Get("$orderby"))
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "$orderby is only supported on activityDateTime.", "")
		return
	}
	s.mu.Lock()
	if wait := s.throttleAuditLocked(appID); wait > 0 {
		s.mu.Unlock()
		code, msg := failureText(OpListAudits, http.StatusTooManyRequests)
		s.writeGraphError(w, r, http.StatusTooManyRequests, code, msg, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return
	}
	now := s.now()
	oldest := now.Add(-s.audit.retention)
	var recs []*AuditRecord
	for _, rec := range s.audit.records {
		if rec.Withheld || rec.At.Before(oldest) || now.Before(rec.At.Add(s.audit.delay)) {
			continue
		}
		if cond == nil || cond.match(rec) {
			recs = append(recs, rec)
		}
	}
	slices.SortStableFunc(recs, func(a, b *AuditRecord) int {
		if asc {
			return a.At.Compare(b.At)
		}
		return b.At.Compare(a.At)
	})
	items := make([]any, len(recs))
	for i, rec := range recs {
		items[i] = auditJSON(rec)
	}
	size := s.audit.pageSize
	s.mu.Unlock()
	s.writePageSized(w, r, metadataURL+"#auditLogs/directoryAudits", items, size)
}

// auditJSON renders a record as a directoryAudit resource.
func auditJSON(r *AuditRecord) map[string]any {
	var user, app any
	if r.By.AppID != "" || r.By.ServicePrincipalID != "" {
		app = map[string]any{"appId": r.By.AppID, "displayName": r.By.AppName,
			"servicePrincipalId": r.By.ServicePrincipalID, "servicePrincipalName": nil}
	} else {
		user = map[string]any{"id": r.By.UserID, "displayName": nilIfEmpty(r.By.UserName),
			"userPrincipalName": r.By.UPN, "ipAddress": "203.0.113.7", "userType": nil, "homeTenantId": nil, "homeTenantName": nil}
	}
	mods := make([]any, 0, len(r.Modified))
	for _, m := range r.Modified {
		mods = append(mods, map[string]any{"displayName": m.Name, "oldValue": nilIfEmpty(m.OldValue), "newValue": nilIfEmpty(m.NewValue)})
	}
	return map[string]any{
		"id":                  r.ID,
		"category":            r.Category,
		"correlationId":       newGUID(),
		"result":              "success",
		"resultReason":        r.ResultReason,
		"activityDisplayName": r.Activity,
		"activityDateTime":    graphTime(r.At),
		"loggedByService":     r.Service,
		"operationType":       r.OperationType,
		"initiatedBy":         map[string]any{"app": app, "user": user},
		"targetResources": []any{map[string]any{
			"id": r.TargetID, "displayName": nil, "type": "User", "userPrincipalName": r.TargetUPN,
			"groupType": nil, "modifiedProperties": mods,
		}},
		"additionalDetails": []any{},
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
