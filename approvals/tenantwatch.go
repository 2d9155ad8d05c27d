package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Audit events of the tenant watcher: what Entra ID's audit log showed about passes.
const (
	// EventConfirmedInEntra is a pass tapbot issued showing up in Entra ID's audit log.
	EventConfirmedInEntra = "confirmed_in_entra"
	// EventExternalCreated is a pass made outside tapbot (the portal, PowerShell, another app).
	EventExternalCreated = "external_pass_created"
	// EventExternalDeleted is a pass tapbot issued deleted in Entra ID by someone else.
	EventExternalDeleted = "external_pass_deleted"
	// EventExternalAcknowledged is someone in chat saying a pass made outside tapbot was expected.
	EventExternalAcknowledged = "external_pass_acknowledged"
	// EventExternalRevoked is a pass made outside tapbot deleted from its alert.
	EventExternalRevoked = "external_pass_revoked"
)

// DefaultTenantWatchInterval is how often the audit log is read (TAP_TENANT_WATCH_INTERVAL).
const DefaultTenantWatchInterval = 5 * time.Minute

// TenantWatchOverlap is how far before its cursor each read of the audit log starts again:
// Entra ID writes audit records late (often minutes, without a bound Microsoft gives), so a
// record that arrives up to this late is still read. Records read twice are handled once.
const TenantWatchOverlap = 30 * time.Minute

// DefaultAuditLogRetention is how long Entra ID keeps audit records on the Free tier; P1/P2
// keep 30 days (TAP_AUDIT_LOG_RETENTION).
const DefaultAuditLogRetention = 7 * 24 * time.Hour

// tenantKeep is how long the watcher remembers a record it handled: longer than any read that
// can return it again (the overlap plus an interval), and long enough for `tapbot passes`.
const tenantKeep = RecordRetention

// Store keys of the tenant watcher.
const (
	tenantCursorKey = "tenant-cursor"
	tenantTurnKey   = "tenant-watch-turn"
	tenantOffKey    = "tenant-watch-off"
	tenantGapKey    = "tenant-watch-gap"
)

// recordKey maps an audit record's id to the ID tapbot gave what it found (an external pass),
// or marks a record about tapbot's own pass as handled.
func recordKey(recordID string) string { return "tenant-record:" + recordID }

// externalKey holds an external pass as JSON.
func externalKey(id string) string { return "external-pass:" + id }

// externalByPassKey maps a pass's method ID to the external pass tapbot saw made.
func externalByPassKey(passID string) string { return "external-by-pass:" + passID }

// passRequestKey maps a pass's method ID to the request that issued it, for as long as the
// request's record is kept, so a late audit record about it still finds its request.
func passRequestKey(passID string) string { return "pass-request:" + passID }

// ExternalState is where a pass made outside tapbot stands for tapbot.
type ExternalState string

// The states of an external pass.
const (
	ExternalAlerted      ExternalState = "alerted"      // raised, nobody answered yet
	ExternalAcknowledged ExternalState = "acknowledged" // someone said it was expected
	ExternalRevoked      ExternalState = "revoked"      // deleted from its alert
	ExternalDeleted      ExternalState = "deleted"      // deleted in Entra ID outside tapbot
)

// ExternalPass is a Temporary Access Pass made outside tapbot, as the audit log showed it, and
// what people in chat did about it. It never holds the pass's code (the log never has it).
type ExternalPass struct {
	ID   string          `json:"id"` // a tapbot ID: the alert's buttons carry it
	Pass TenantPassEvent `json:"pass"`
	// SlackID is the person's chat account, when one has their UPN.
	SlackID    string     `json:"slack_id,omitempty"`
	Privileged Privileges `json:"privileged,omitzero"`
	// PrivilegeUnknown says why the privileged check could not be made; the alert says so.
	PrivilegeUnknown string        `json:"privilege_unknown,omitempty"`
	State            ExternalState `json:"state"`
	SeenAt           time.Time     `json:"seen_at"`
	AlertMessage     MessageRef    `json:"alert_message,omitzero"`
	// AlertOwner and AlertUntil mark the replica posting the alert, so a slow post is not
	// repeated by the next turn.
	AlertOwner string    `json:"alert_owner,omitempty"`
	AlertUntil time.Time `json:"alert_until,omitzero"`
	DecidedBy  string    `json:"decided_by,omitempty"` // chat user who acknowledged or revoked
	DecidedAt  time.Time `json:"decided_at,omitzero"`
	Reason     string    `json:"reason,omitempty"` // why it was expected
	// DeletedBy is who deleted it in Entra ID outside tapbot.
	DeletedBy AuditActor `json:"deleted_by,omitzero"`
	// Rev is new with each write, so a swap sent again after a lost reply knows its own write.
	Rev string `json:"rev"`
}

// Describe names an actor of the audit log in a few plain words (no chat markup).
func (a AuditActor) Describe() string {
	name := a.DisplayName
	switch {
	case a.IsApp() && name == "":
		name = "an application"
		if a.AppID != "" {
			name += " (app ID " + a.AppID + ")"
		}
		return name
	case a.IsApp():
		return "the application " + name
	case a.UPN != "" && name != "" && !strings.EqualFold(name, a.UPN):
		return name + " (" + a.UPN + ")"
	case a.UPN != "":
		return a.UPN
	case name != "":
		return name
	case a.UserID != "":
		return "user " + a.UserID
	}
	return "someone the audit log does not name"
}

// Window is a span of time the tenant watcher could not check.
type Window struct {
	From, To time.Time
}

// TenantReport is what one turn of the tenant watcher found, for the chat adapter to show.
type TenantReport struct {
	// Alerts are external passes to raise, each claimed by this replica for its post; call
	// AlertPosted once posted.
	Alerts []*ExternalPass
	// Removed are tapbot's requests whose pass someone deleted in Entra ID.
	Removed []*Request
	// Deleted are external passes deleted in Entra ID outside tapbot after their alert.
	Deleted []*ExternalPass
	// Gap is the window the audit log no longer holds and nobody checked; said once.
	Gap *Window
	// Off says, once, why the watcher stopped (the app may not read the audit log).
	Off error
}

// TenantWatchInterval is how often the audit log is read; 0 when the watcher is off
// (TAP_TENANT_WATCH_INTERVAL=off, or no audit log was given).
func (s *Service) TenantWatchInterval() time.Duration {
	if s.auditLog == nil || s.tenantOff.Load() {
		return 0
	}
	return offOrDefault(s.cfg.TenantWatchInterval, DefaultTenantWatchInterval)
}

// TakeTenantWatchTurn reports whether this replica reads the audit log now: one replica an
// interval, so Graph's reports API (about 5 requests per 10 s per tenant) is asked once.
func (s *Service) TakeTenantWatchTurn(ctx context.Context) (bool, error) {
	d := s.TenantWatchInterval()
	if d == 0 {
		return false, nil
	}
	return s.store.Claim(ctx, tenantTurnKey, d)
}

func (s *Service) auditLogRetention() time.Duration {
	if s.cfg.AuditLogRetention > 0 {
		return s.cfg.AuditLogRetention
	}
	return DefaultAuditLogRetention
}

// ownApp reports whether the audit log's actor is tapbot's own app registration or managed
// identity.
func (s *Service) ownApp(a AuditActor) bool {
	return a.AppID != "" && slices.ContainsFunc(s.cfg.OwnAppIDs, func(id string) bool { return strings.EqualFold(id, a.AppID) })
}

// WatchTenant reads the audit log from the cursor (less TenantWatchOverlap) and handles each
// pass record once: tapbot's own passes confirm their request's trail, every other creation
// becomes an alert, and a tapbot pass deleted by someone else ends its request. Call it once
// per TakeTenantWatchTurn. The cursor moves only when every record was handled, so a failure
// is read again next turn, and handled records are not handled twice.
func (s *Service) WatchTenant(ctx context.Context) (TenantReport, error) {
	var rep TenantReport
	if s.TenantWatchInterval() == 0 {
		return rep, nil
	}
	now := s.now()
	cursorRaw, err := s.store.Value(ctx, tenantCursorKey)
	if err != nil {
		return rep, fmt.Errorf("tenant watch cursor: %w", err)
	}
	since := now.Add(-TenantWatchOverlap) // the first turn looks back one overlap
	var cursor time.Time
	if cursorRaw != "" {
		if cursor, err = time.Parse(time.RFC3339Nano, cursorRaw); err != nil {
			return rep, fmt.Errorf("tenant watch cursor %q: %w", cursorRaw, err)
		}
		since = cursor.Add(-TenantWatchOverlap)
	}
	if oldest := now.Add(-s.auditLogRetention()); since.Before(oldest) {
		gap := &Window{From: since, To: oldest}
		// Once across replicas: the turn that finds the gap moves the cursor past it.
		if first, err := s.store.Claim(ctx, tenantGapKey+":"+since.UTC().Format(time.RFC3339Nano), tenantKeep); err == nil && first {
			rep.Gap = gap
			s.log.WarnContext(ctx, "tenant watch: the audit log no longer holds a window nobody checked; passes made then were not seen",
				"from", gap.From, "to", gap.To, "retention", s.auditLogRetention().String())
		}
		since = oldest
	}
	events, err := s.auditLog.PassEvents(ctx, since)
	if err != nil {
		if ErrorCode(err) == Forbidden {
			s.tenantOff.Store(true)
			s.log.ErrorContext(ctx, "tenant watch is off: tapbot may not read Entra ID's audit log. Grant the app AuditLog.Read.All "+
				"(application permission, with admin consent) and restart, or set TAP_TENANT_WATCH_INTERVAL=off. Everything else works.", "err", err)
			if first, cerr := s.store.Claim(ctx, tenantOffKey, 24*time.Hour); cerr == nil && first {
				rep.Off = err
			}
			return rep, nil
		}
		return rep, fmt.Errorf("tenant watch: read the audit log: %w", err)
	}
	var errs []error
	for _, e := range events {
		if err := s.handleTenantEvent(ctx, e, &rep); err != nil {
			errs = append(errs, fmt.Errorf("tenant watch record %s: %w", e.RecordID, err))
		}
	}
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	next := now.UTC().Format(time.RFC3339Nano)
	if ok, err := s.store.CompareAndSwap(ctx, tenantCursorKey, cursorRaw, next, tenantKeep); err != nil {
		return rep, fmt.Errorf("tenant watch: move the cursor: %w", err)
	} else if !ok {
		s.log.WarnContext(ctx, "tenant watch: another replica moved the cursor meanwhile; it stays where that one put it")
	}
	return rep, nil
}

func (s *Service) handleTenantEvent(ctx context.Context, e TenantPassEvent, rep *TenantReport) error {
	if e.RecordID == "" {
		return nil
	}
	reqID := ""
	if e.PassID != "" {
		var err error
		if reqID, err = s.store.Value(ctx, passRequestKey(e.PassID)); err != nil {
			return err
		}
	}
	switch e.Change {
	case PassCreated:
		if reqID != "" || s.ownApp(e.By) {
			return s.confirmOwn(ctx, e, reqID)
		}
		return s.raiseExternal(ctx, e, rep)
	case PassDeleted:
		if s.ownApp(e.By) {
			return nil // tapbot's own revoke or clean-up
		}
		if reqID != "" {
			return s.removedInEntra(ctx, e, reqID, rep)
		}
		if e.PassID != "" {
			return s.externalDeleted(ctx, e, rep)
		}
	}
	return nil
}

// confirmOwn records, once, that the audit log shows a pass tapbot made.
func (s *Service) confirmOwn(ctx context.Context, e TenantPassEvent, reqID string) error {
	if reqID == "" {
		// tapbot's app made it, and no request has recorded it yet: a record read in the moment
		// between the create and the request recording the pass ID, or an interrupted approval
		// (the sweeper cleans that up). Left unhandled, so a later read within the overlap
		// confirms it on its request.
		s.log.DebugContext(ctx, "tenant watch: a pass tapbot's app made that no request recorded (yet)",
			"target", e.UserUPN, "pass_id", e.PassID)
		return nil
	}
	// Not Claim: its value may look like an external pass's ID. "own:" never does.
	first, err := s.store.CompareAndSwap(ctx, recordKey(e.RecordID), "", "own:"+NewID(), tenantKeep)
	if err != nil || !first {
		return err
	}
	r, err := s.store.Get(ctx, reqID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.record(ctx, EventConfirmedInEntra, r, "", "audit record "+e.RecordID+" at "+e.At.UTC().Format(time.RFC3339))
	return nil
}

// removedInEntra ends a tapbot request whose pass someone deleted in Entra ID, so nobody tries
// to reveal a dead pass.
func (s *Service) removedInEntra(ctx context.Context, e TenantPassEvent, reqID string, rep *TenantReport) error {
	by := e.By.Describe()
	now := s.now()
	changed := false
	r, err := s.store.Update(ctx, reqID, func(r *Request) error {
		changed = false
		if r.State != Issued && r.State != Revealing && r.State != Revealed {
			return nil // already ended: revoked, expired or failed
		}
		r.State, r.RevokedBy, r.RevokedAt, r.Owner, r.LeaseUntil = Revoked, "", now, "", time.Time{}
		r.RemovedInEntraBy = by
		changed = true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	if err := s.store.DeleteSecret(ctx, reqID); err != nil {
		s.log.ErrorContext(ctx, "delete the sealed copy of a pass deleted in Entra ID", "request_id", reqID, "err", err)
	}
	s.record(ctx, EventExternalDeleted, r, "", "deleted in Entra ID by "+by+" (audit record "+e.RecordID+")")
	rep.Removed = append(rep.Removed, r)
	return nil
}

// raiseExternal keeps a pass made outside tapbot and claims its alert for this replica, unless
// its alert was posted or is being posted.
func (s *Service) raiseExternal(ctx context.Context, e TenantPassEvent, rep *TenantReport) error {
	key := recordKey(e.RecordID)
	newID := NewID()
	took, err := s.store.CompareAndSwap(ctx, key, "", newID, tenantKeep)
	if err != nil {
		return err
	}
	id := newID
	if !took {
		if id, err = s.store.Value(ctx, key); err != nil {
			return err
		}
		if !ValidID(id) {
			return nil // a record marked handled (tapbot's own)
		}
	}
	p, _, err := s.loadExternal(ctx, id)
	if errors.Is(err, ErrNotFound) {
		p, err = s.newExternal(ctx, id, e)
	}
	if err != nil {
		return err
	}
	if !p.AlertMessage.IsZero() || p.State != ExternalAlerted {
		return nil
	}
	now := s.now()
	claimed, err := s.updateExternal(ctx, id, func(p *ExternalPass) error {
		if !p.AlertMessage.IsZero() || p.AlertOwner != "" && now.Before(p.AlertUntil) {
			return ErrConflict
		}
		p.AlertOwner, p.AlertUntil = s.cfg.Instance, now.Add(10*time.Minute)
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	rep.Alerts = append(rep.Alerts, claimed)
	return nil
}

// newExternal stores a pass made outside tapbot, with who it is for in chat and whether they
// are privileged, and records it in the trail.
func (s *Service) newExternal(ctx context.Context, id string, e TenantPassEvent) (*ExternalPass, error) {
	p := &ExternalPass{ID: id, Pass: e, State: ExternalAlerted, SeenAt: s.now()}
	if e.UserUPN != "" {
		if slackID, err := s.people.FindByEmail(ctx, e.UserUPN); err == nil {
			p.SlackID = slackID
		} else if !errors.Is(err, ErrNotFound) {
			s.log.WarnContext(ctx, "tenant watch: could not look the person up in chat", "target", e.UserUPN, "err", err)
		}
	}
	if e.UserID == "" {
		p.PrivilegeUnknown = "the audit record does not name the person's account"
	} else if priv, err := s.dir.Privileges(ctx, e.UserID, s.cfg.ProtectedGroups); err != nil {
		s.log.WarnContext(ctx, "tenant watch: could not check whether the person is privileged", "target", e.UserUPN, "err", err)
		p.PrivilegeUnknown = UserMessage(err)
	} else {
		p.Privileged = priv
	}
	p.Rev = NewID()
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	ok, err := s.store.CompareAndSwap(ctx, externalKey(id), "", string(b), s.externalTTL(p))
	if err != nil {
		return nil, err
	}
	if !ok {
		cur, _, err := s.loadExternal(ctx, id)
		return cur, err
	}
	if e.PassID != "" {
		if _, err := s.store.CompareAndSwap(ctx, externalByPassKey(e.PassID), "", id, s.externalTTL(p)); err != nil {
			s.log.WarnContext(ctx, "tenant watch: could not index the external pass by its ID", "external_id", id, "err", err)
		}
	}
	s.record(ctx, EventExternalCreated, p.asRequest(), "", "made outside tapbot by "+e.By.Describe()+" (audit record "+e.RecordID+")")
	return p, nil
}

// externalDeleted marks an external pass deleted in Entra ID outside tapbot.
func (s *Service) externalDeleted(ctx context.Context, e TenantPassEvent, rep *TenantReport) error {
	id, err := s.store.Value(ctx, externalByPassKey(e.PassID))
	if err != nil || id == "" {
		return err
	}
	changed := false
	p, err := s.updateExternal(ctx, id, func(p *ExternalPass) error {
		changed = false
		if p.State == ExternalRevoked || p.State == ExternalDeleted {
			return nil
		}
		p.State, p.DeletedBy, changed = ExternalDeleted, e.By, true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil || !changed {
		return err
	}
	s.record(ctx, EventExternalDeleted, p.asRequest(), "", "deleted in Entra ID by "+e.By.Describe()+" (audit record "+e.RecordID+")")
	rep.Deleted = append(rep.Deleted, p)
	return nil
}

// externalTTL keeps an external pass as long as a request record: RecordRetention, or past its
// end by RecordMargin.
func (s *Service) externalTTL(p *ExternalPass) time.Duration {
	ttl := tenantKeep
	if !p.Pass.EndsAt.IsZero() {
		ttl = max(ttl, p.Pass.EndsAt.Add(RecordMargin).Sub(s.now()))
	}
	return ttl
}

func (s *Service) loadExternal(ctx context.Context, id string) (*ExternalPass, string, error) {
	return loadExternalFrom(ctx, s.store, id)
}

// loadExternalFrom reads an external pass and the raw value it was read from; ErrNotFound when
// there is none.
func loadExternalFrom(ctx context.Context, store Store, id string) (*ExternalPass, string, error) {
	raw, err := store.Value(ctx, externalKey(id))
	if err != nil {
		return nil, "", err
	}
	if raw == "" {
		return nil, "", ErrNotFound
	}
	var p ExternalPass
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, "", fmt.Errorf("external pass %s: %w", id, err)
	}
	return &p, raw, nil
}

// updateExternal changes an external pass atomically: read, change, and write only if nobody
// wrote in between, retrying otherwise. An error from change is returned as is.
func (s *Service) updateExternal(ctx context.Context, id string, change func(*ExternalPass) error) (*ExternalPass, error) {
	for range 50 {
		p, raw, err := s.loadExternal(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := change(p); err != nil {
			return p, err
		}
		p.Rev = NewID()
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		ok, err := s.store.CompareAndSwap(ctx, externalKey(id), raw, string(b), s.externalTTL(p))
		if err != nil {
			return nil, err
		}
		if ok {
			return p, nil
		}
	}
	return nil, fmt.Errorf("external pass %s: too many concurrent writes", id)
}

// asRequest is the external pass in the shape the audit trail and chat messages take: its ID,
// the person, and the pass's times.
func (p *ExternalPass) asRequest() *Request {
	r := &Request{
		ID: p.ID, State: Issued, Target: Target{EntraID: p.Pass.UserID, UPN: p.Pass.UserUPN, SlackID: p.SlackID},
		PassID: p.Pass.PassID, PassStartsAt: p.Pass.StartsAt, PassExpiresAt: p.Pass.EndsAt,
		UsableOnce: p.Pass.Usage == UsageOnce, Privileged: p.Privileged, Reason: p.Reason, CreatedAt: p.SeenAt,
	}
	if !p.Pass.StartsAt.IsZero() && !p.Pass.EndsAt.IsZero() {
		r.Lifetime = p.Pass.EndsAt.Sub(p.Pass.StartsAt)
	}
	return r
}

// External returns a pass made outside tapbot, with a readable error when there is none.
func (s *Service) External(ctx context.Context, id string) (*ExternalPass, error) {
	if !ValidID(id) {
		return nil, Errorf(NotFound, "This alert does not exist.")
	}
	p, _, err := s.loadExternal(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(NotFound, "This alert is no longer in tapbot's store.")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return p, nil
}

// AlertPosted records where an external pass's alert is, so nobody posts it again and every
// replica can update it.
func (s *Service) AlertPosted(ctx context.Context, id string, m MessageRef) (*ExternalPass, error) {
	p, err := s.updateExternal(ctx, id, func(p *ExternalPass) error {
		p.AlertMessage, p.AlertOwner, p.AlertUntil = m, "", time.Time{}
		return nil
	})
	if err != nil {
		return p, storeError(err)
	}
	return p, nil
}

// mayAnswerExternal is who may revoke or acknowledge a pass made outside tapbot: as for
// tapbot's own passes, every approver and protected approver (the security team).
func (s *Service) mayAnswerExternal(ctx context.Context, actor string) error {
	may := append(append([]string{}, s.cfg.Approvers...), s.cfg.ProtectedApprovers...)
	ok, err := s.isMember(ctx, actor, may)
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Code: Forbidden, Who: may, Message: "Only the approvers can revoke or acknowledge a pass made outside tapbot."}
	}
	return nil
}

// externalConflict says why an external pass cannot be answered any more.
func externalConflict(p *ExternalPass) error {
	switch p.State {
	case ExternalRevoked:
		return Errorf(Conflict, "This pass was already revoked.")
	case ExternalAcknowledged:
		return Errorf(Conflict, "This pass was already acknowledged as expected.")
	case ExternalDeleted:
		return Errorf(Conflict, "This pass was already deleted in Entra ID.")
	}
	return nil
}

// RevokeExternal deletes exactly the pass an alert is about in Entra ID.
func (s *Service) RevokeExternal(ctx context.Context, id, actor string) (*ExternalPass, error) {
	p, err := s.External(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.mayAnswerExternal(ctx, actor); err != nil {
		return p, err
	}
	if err := externalConflict(p); err != nil {
		return p, err
	}
	if p.Pass.PassID == "" || p.Pass.UserID == "" {
		return p, Errorf(Invalid, "The audit record does not say which pass this is, so tapbot cannot delete it; delete the Temporary Access Pass of %s in Entra ID by hand.", p.Pass.UserUPN)
	}
	if err := s.dir.DeletePass(ctx, p.Pass.UserID, p.Pass.PassID); err != nil {
		return p, err
	}
	now := s.now()
	revoked, err := s.updateExternal(ctx, id, func(p *ExternalPass) error {
		if p.State == ExternalRevoked {
			return ErrConflict
		}
		p.State, p.DecidedBy, p.DecidedAt = ExternalRevoked, actor, now
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return revoked, externalConflict(revoked)
	}
	if err != nil {
		return p, storeError(err)
	}
	s.record(ctx, EventExternalRevoked, revoked.asRequest(), actor, "deleted in Entra ID from its alert")
	return revoked, nil
}

// AcknowledgeExternal records that a pass made outside tapbot was expected, by whom and why.
func (s *Service) AcknowledgeExternal(ctx context.Context, id, actor, reason string) (*ExternalPass, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, onField(Errorf(Invalid, "Say why this pass was expected, so the trail shows it."), FieldReason)
	}
	p, err := s.External(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.mayAnswerExternal(ctx, actor); err != nil {
		return p, err
	}
	now := s.now()
	acked, err := s.updateExternal(ctx, id, func(p *ExternalPass) error {
		if p.State != ExternalAlerted {
			return ErrConflict
		}
		p.State, p.DecidedBy, p.DecidedAt, p.Reason = ExternalAcknowledged, actor, now, reason
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return acked, externalConflict(acked)
	}
	if err != nil {
		return p, storeError(err)
	}
	s.record(ctx, EventExternalAcknowledged, acked.asRequest(), actor, "expected: "+reason)
	return acked, nil
}
