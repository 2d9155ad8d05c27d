package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
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

// Onboarding defaults (TAP_ONBOARDING_NOTICE, TAP_ONBOARDING_START).
const (
	DefaultOnboardingNotice = 3 * 24 * time.Hour
	DefaultOnboardingStart  = "08:00"
)

// Events of the onboarding look-ahead.
const (
	EventOnboardingPrompted = "onboarding_prompted"
	EventOnboardingDeclined = "onboarding_declined"
)

// OnboardingState is where a new hire's first-morning pass stands.
type OnboardingState string

// The states a hire's onboarding record holds. After Requested, the request itself says how far
// it got (approved, issued, revealed, registered).
const (
	// OnboardingAsking is kept while the prompt is being sent, so a click that comes before
	// Prompted finds the record; one left from a crash is asked again after promptLease.
	OnboardingAsking    OnboardingState = "asking"
	OnboardingAsked     OnboardingState = "asked"
	OnboardingRequested OnboardingState = "requested"
	OnboardingDeclined  OnboardingState = "not_needed"
)

// Onboarding is what tapbot keeps of one new hire it asked about, so that no replica or restart
// asks twice and a click on the prompt can be checked and answered.
type Onboarding struct {
	Key         string    `json:"key"`
	UserID      string    `json:"user_id"` // the hire's Entra ID object ID
	UPN         string    `json:"upn"`
	Mail        string    `json:"mail,omitempty"`
	DisplayName string    `json:"display_name,omitempty"`
	HireDate    time.Time `json:"hire_date"`
	// FirstDay is the calendar day the hire starts, "2006-01-02" (see FirstDay).
	FirstDay string `json:"first_day"`
	// SlackID is the hire's own chat account when they already have one; usually empty before
	// day one.
	SlackID string `json:"slack_id,omitempty"`
	// Manager is the hire's Entra ID manager (UPN), and ManagerSlackID their chat account; both
	// empty when Entra ID names no manager. With no ManagerSlackID the approval channel is asked.
	Manager        string `json:"manager,omitempty"`
	ManagerName    string `json:"manager_name,omitempty"`
	ManagerSlackID string `json:"manager_slack_id,omitempty"`
	// ManagerWhy says why a manager Entra ID names is not asked in a DM: not in Slack, not
	// reachable there, or not among those who may request passes.
	ManagerWhy string `json:"manager_why,omitempty"`
	// Enabled is the hire's accountEnabled when they were asked about: HR often enables the
	// account on day one, and a pass works only once it is.
	Enabled        bool            `json:"enabled"`
	State          OnboardingState `json:"state"`
	Prompt         MessageRef      `json:"prompt,omitzero"`
	AskedAt        time.Time       `json:"asked_at,omitzero"`
	RequestID      string          `json:"request_id,omitempty"`
	By             string          `json:"by,omitempty"` // who requested, or said not needed
	DeclinedReason string          `json:"declined_reason,omitempty"`
	DecidedAt      time.Time       `json:"decided_at,omitzero"`
}

// AskedInChannel reports whether the prompt went to the approval channel, because the hire has no
// manager in Entra ID or the manager is not in chat.
func (o *Onboarding) AskedInChannel() bool { return o.ManagerSlackID == "" }

// FirstDay is the calendar day a hire date means. HR provisioning writes employeeHireDate as a
// point in time: most systems write midnight UTC of the first day, some midnight (or the start
// of the working day) in the office's own zone, which east of Greenwich is the evening before in
// UTC. The day is the one whose midnight UTC is nearest, which reads every office's midnight,
// from UTC-11 to UTC+11, as its own day, the same for everyone who sees it.
func FirstDay(hire time.Time) (year int, month time.Month, day int) {
	return hire.UTC().Add(12 * time.Hour).Date()
}

// FirstMorning is when a first-morning pass starts: clock ("08:00") on the hire's first day in
// loc, the requester's time zone.
func FirstMorning(hire time.Time, loc *time.Location, clock string) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	t, err := time.Parse("15:04", clock)
	if err != nil {
		return time.Time{}, fmt.Errorf("start time %q is not HH:MM: %w", clock, err)
	}
	y, m, d := FirstDay(hire)
	return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, loc), nil
}

func firstDayString(hire time.Time) string {
	y, m, d := FirstDay(hire)
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

// onboardingKey names one hire's onboarding record: the person and their first day, so a hire
// date that HR moves is asked about again.
func onboardingKey(userID string, hire time.Time) string {
	y, m, d := hire.UTC().Date()
	return fmt.Sprintf("onboarding:%s:%04d-%02d-%02d", strings.ToLower(userID), y, m, d)
}

// ValidOnboardingKey reports whether s has the shape of a key from onboardingKey, so a forged
// button value is refused before it reaches the store.
func ValidOnboardingKey(s string) bool {
	rest, ok := strings.CutPrefix(s, "onboarding:")
	if !ok || len(s) > 100 {
		return false
	}
	id, day, ok := strings.Cut(rest, ":")
	if !ok || id == "" || strings.Trim(id, "0123456789abcdef-") != "" {
		return false
	}
	_, err := time.Parse("2006-01-02", day)
	return err == nil
}

// promptLease is how long a replica may take to send one hire's prompt before another may try;
// a crash in that window delays the prompt by this much, it never loses it.
const promptLease = time.Hour

// onboardingKept is how long a hire's record outlives their first day, so a late click is still
// answered and nobody is asked again.
const onboardingKept = 30 * 24 * time.Hour

// OnboardingOn reports whether the look-ahead runs (TAP_ONBOARDING).
func (s *Service) OnboardingOn() bool { return s.cfg.Onboarding && s.hires != nil }

// OnboardingEvery is how often one replica looks ahead for new hires; a replica also looks when
// it starts. Hourly, so a hire whose prompt failed or was interrupted is asked within about
// promptLease and an hour, not a day later.
const OnboardingEvery = time.Hour

// TakeOnboardingTurn reports whether this replica should look ahead now: one replica an hour.
// LookAhead is safe to run on several at once (each hire is claimed), so the look at start
// needs no turn.
func (s *Service) TakeOnboardingTurn(ctx context.Context) (bool, error) {
	if !s.OnboardingOn() {
		return false, nil
	}
	return s.store.Claim(ctx, "onboarding-turn", OnboardingEvery-5*time.Minute)
}

// LookAhead finds the people whose hire date falls within TAP_ONBOARDING_NOTICE from now and
// who have not been asked about, and returns one prompt for each, to be sent and then confirmed
// with Prompted (or given back with PromptFailed). Each hire is claimed first, so two replicas
// looking at once ask once. A hire tapbot cannot look up further (their manager) is still
// prompted, to the approval channel.
func (s *Service) LookAhead(ctx context.Context) ([]*Onboarding, error) {
	if !s.OnboardingOn() {
		return nil, nil
	}
	now := s.now()
	// From a day back: the first morning of a hire dated midnight UTC is still ahead west of
	// Greenwich until that day ends there.
	hires, err := s.hires.UpcomingHires(ctx, now.Add(-24*time.Hour), now.Add(offOrDefault(s.cfg.OnboardingNotice, DefaultOnboardingNotice)))
	if err != nil {
		return nil, fmt.Errorf("look for upcoming hires: %w", err)
	}
	var out []*Onboarding
	for _, h := range hires {
		if !h.HireDate.Add(24 * time.Hour).After(now) {
			continue
		}
		key := onboardingKey(h.User.ID, h.HireDate)
		if known, err := s.Onboarding(ctx, key); err == nil && !(known.State == OnboardingAsking && now.Sub(known.AskedAt) > promptLease) {
			continue
		} else if err != nil && ErrorCode(err) != NotFound {
			return out, err
		}
		won, err := s.store.Claim(ctx, "prompting:"+key, promptLease)
		if err != nil {
			return out, storeError(err)
		}
		if !won {
			continue
		}
		o := &Onboarding{Key: key, UserID: h.User.ID, UPN: h.User.UPN, Mail: h.User.Mail, DisplayName: h.User.DisplayName,
			HireDate: h.HireDate, FirstDay: firstDayString(h.HireDate), Enabled: h.Enabled, State: OnboardingAsked}
		if err := s.findManager(ctx, o, h.User); err != nil {
			// Not "no manager" but Entra ID or Slack could not say now. Asking the channel
			// would go around the manager, so the hire waits for the next look-ahead.
			s.log.WarnContext(ctx, "new hire's manager not found now; tried again at the next look-ahead", "hire", h.User.UPN, "err", err)
			s.PromptFailed(ctx, o)
			continue
		}
		// Kept before the prompt goes out, so a click on it finds the record.
		o.State, o.AskedAt = OnboardingAsking, now
		if err := s.saveOnboarding(ctx, o); err != nil {
			s.PromptFailed(ctx, o)
			return out, err
		}
		out = append(out, o)
	}
	return out, nil
}

// findManager fills in who is asked about a hire: their Entra ID manager in a DM when the
// manager is in chat and may request passes, otherwise the approval channel, with why. An error
// means Entra ID or chat could not say now.
func (s *Service) findManager(ctx context.Context, o *Onboarding, hire DirectoryUser) error {
	id, err := s.chatAccount(ctx, hire)
	if err != nil {
		return err
	}
	o.SlackID = id
	mgr, err := s.dir.Manager(ctx, hire.ID)
	if ErrorCode(err) == NotFound {
		return nil // no manager: the channel is asked
	}
	if err != nil {
		return err
	}
	o.Manager, o.ManagerName = mgr.UPN, mgr.DisplayName
	if o.ManagerSlackID, err = s.chatAccount(ctx, mgr); err != nil {
		return err
	}
	if o.ManagerSlackID == "" {
		o.ManagerWhy = "is not in Slack"
		return nil
	}
	if len(s.cfg.Requesters) > 0 {
		ok, err := s.isMember(ctx, o.ManagerSlackID, s.cfg.Requesters)
		if err != nil {
			return err
		}
		if !ok {
			// A DM they could not act on would be a dead end: the channel is asked instead.
			o.ManagerSlackID, o.ManagerWhy = "", "is not among those who may request passes (TAP_REQUESTERS)"
		}
	}
	return nil
}

// chatAccount finds a directory user's chat account by mail, then UPN: "" when they have none,
// an error when chat cannot say now.
func (s *Service) chatAccount(ctx context.Context, u DirectoryUser) (string, error) {
	for _, addr := range uniqueFold(u.Mail, u.UPN) {
		if addr == "" {
			continue
		}
		id, err := s.people.FindByEmail(ctx, addr)
		if err == nil && id != "" {
			return id, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("find %s in chat: %w", u.UPN, err)
		}
	}
	return "", nil
}

// Unreachable records that the manager could not be sent a DM for good (Slack refused it, not
// "later"), so the hire's prompt goes to the approval channel instead, saying why.
func (o *Onboarding) Unreachable(why string) {
	o.ManagerSlackID, o.ManagerWhy = "", why
}

// Prompted records that a hire's prompt was sent (to the manager, or to the approval channel)
// and where, so it is never sent again, and returns the record as it now is: a click on the
// prompt may have answered it already, which the prompt must then show.
func (s *Service) Prompted(ctx context.Context, o *Onboarding, at MessageRef) (*Onboarding, error) {
	cur, err := s.withOnboarding(ctx, o.Key, func(cur *Onboarding) error {
		cur.Prompt, cur.ManagerSlackID, cur.ManagerWhy = at, o.ManagerSlackID, o.ManagerWhy
		if cur.State == OnboardingAsking {
			cur.State, cur.AskedAt = OnboardingAsked, s.now()
		}
		return nil
	})
	if ErrorCode(err) == NotFound {
		// The record was lost (an embedded store restarted): keep what was sent.
		cur = o
		cur.Prompt, cur.State, cur.AskedAt = at, OnboardingAsked, s.now()
		err = s.saveOnboarding(ctx, cur)
	}
	if err != nil {
		return o, err
	}
	// The record now says the hire was asked; the claim is no longer what keeps a second
	// prompt away.
	if err := s.store.Release(ctx, "prompting:"+o.Key); err != nil {
		s.log.WarnContext(ctx, "onboarding prompt claim not released", "hire", o.UPN, "err", err)
	}
	where := "the approval channel"
	if !cur.AskedInChannel() {
		where = "manager " + cur.ManagerSlackID
	}
	s.recordOnboarding(ctx, EventOnboardingPrompted, cur, "", "first day "+cur.FirstDay+"; asked "+where)
	return cur, nil
}

// onboardingLock is how long one change of a hire's record may hold it.
const onboardingLock = 10 * time.Second

// withOnboarding changes a hire's record under a short lock, so that two changes (a request and
// a "not needed", a click and the prompt being recorded) never overwrite each other.
func (s *Service) withOnboarding(ctx context.Context, key string, change func(*Onboarding) error) (*Onboarding, error) {
	// The lock holds a token of this call's, and only that token releases it: a change that
	// outlived the lock must not release the next holder's.
	lock, holder := "onboarding-lock:"+key, NewID()
	giveUp := time.Now().Add(2 * time.Second)
	for {
		won, err := s.store.CompareAndSwap(ctx, lock, "", holder, onboardingLock)
		if err != nil {
			return nil, storeError(err)
		}
		if won {
			break
		}
		if time.Now().After(giveUp) {
			return nil, Errorf(Unavailable, "Someone else is answering for this new hire right now; try again in a moment.")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	defer func() {
		if _, err := s.store.CompareAndSwap(context.WithoutCancel(ctx), lock, holder, "", 0); err != nil {
			s.log.WarnContext(ctx, "onboarding lock not released; it lapses by itself", "key", key, "err", err)
		}
	}()
	o, err := s.Onboarding(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := change(o); err != nil {
		return o, err
	}
	return o, s.saveOnboarding(ctx, o)
}

// PromptFailed gives a hire back after their prompt could not be sent, so the next look-ahead
// tries again.
func (s *Service) PromptFailed(ctx context.Context, o *Onboarding) {
	if o.State == OnboardingAsking {
		if err := s.store.Remember(ctx, o.Key, "", 0); err != nil {
			s.log.WarnContext(ctx, "onboarding record not dropped; the hire is asked again within the hour", "hire", o.UPN, "err", err)
		}
	}
	if err := s.store.Release(ctx, "prompting:"+o.Key); err != nil {
		s.log.WarnContext(ctx, "onboarding prompt not released; it is tried again within the hour", "hire", o.UPN, "err", err)
	}
}

// Onboarding returns a hire's record; NotFound when tapbot never asked about them or forgot.
func (s *Service) Onboarding(ctx context.Context, key string) (*Onboarding, error) {
	if !ValidOnboardingKey(key) {
		return nil, Errorf(Invalid, "That button does not belong to a new hire tapbot asked about.")
	}
	raw, err := s.store.Recall(ctx, key)
	if err != nil {
		return nil, storeError(err)
	}
	if raw == "" {
		return nil, Errorf(NotFound, "tapbot no longer has this new hire's record (it is kept 30 days after their first day).")
	}
	var o Onboarding
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return nil, fmt.Errorf("onboarding record %s: %w", key, err)
	}
	return &o, nil
}

// MayAnswerOnboarding checks that user may act on a hire's prompt: the manager it was sent to, or,
// for a prompt in the approval channel, anyone who may request passes.
func (s *Service) MayAnswerOnboarding(ctx context.Context, o *Onboarding, user string) error {
	if !o.AskedInChannel() {
		if user != o.ManagerSlackID {
			return Errorf(Forbidden, "Only %s's manager, who was asked, can answer this.", o.DisplayName)
		}
		return nil
	}
	if len(s.cfg.Requesters) == 0 {
		return nil
	}
	ok, err := s.isMember(ctx, user, s.cfg.Requesters)
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Code: Forbidden, Message: "Only the people who may request passes can answer this.", Who: s.cfg.Requesters}
	}
	return nil
}

// Requested records that a first-morning pass was asked for a hire, by whom and which request.
// Submit checked that the hire was still open for it; a "not needed" recorded since is kept in
// the trail, and the request, which exists, is what the record follows from now on.
func (s *Service) Requested(ctx context.Context, key, by, requestID string) (*Onboarding, error) {
	return s.withOnboarding(ctx, key, func(o *Onboarding) error {
		if o.State == OnboardingDeclined {
			s.log.WarnContext(ctx, "a pass was requested for a new hire just after someone said none is needed", "hire", o.UPN, "request_id", requestID)
		}
		o.State, o.By, o.RequestID, o.DecidedAt = OnboardingRequested, by, requestID, s.now()
		return nil
	})
}

// onboardingOpen checks, before a request made from a hire's prompt is stored, that the prompt
// is still open for it: asked and not answered, or answered with a request that has ended (a
// new pass for a hire whose first one did not do its job), and that the requester may answer it.
func (s *Service) onboardingOpen(ctx context.Context, d Draft) error {
	o, err := s.Onboarding(ctx, d.Onboarding)
	if err != nil {
		return err
	}
	if !strings.EqualFold(d.TargetEmail, o.UPN) {
		return Errorf(Invalid, "This form was filled in for %s, not for %s; open it again from the prompt.", o.UPN, d.TargetEmail)
	}
	if o.By != d.Requester {
		if err := s.MayAnswerOnboarding(ctx, o, d.Requester); err != nil {
			return err
		}
	}
	switch o.State {
	case OnboardingDeclined:
		return Errorf(Conflict, "No pass is needed for %s, as recorded since this form was opened (%s). If one is needed after all, ask with /tap.",
			o.DisplayName, o.DeclinedReason)
	case OnboardingRequested:
		r, err := s.store.Get(ctx, o.RequestID)
		if err == nil && !r.State.Final() {
			return Errorf(Conflict, "A pass for %s was already asked for (request %s).", o.DisplayName, o.RequestID)
		}
	}
	return nil
}

// DeclineOnboarding records that no pass is needed for a hire, and why.
func (s *Service) DeclineOnboarding(ctx context.Context, key, by, reason string) (*Onboarding, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, onField(Errorf(Invalid, "Say why no pass is needed, for the audit trail."), FieldReason)
	}
	already := false
	o, err := s.withOnboarding(ctx, key, func(o *Onboarding) error {
		if err := s.MayAnswerOnboarding(ctx, o, by); err != nil {
			return err
		}
		switch o.State {
		case OnboardingDeclined:
			already = true // said already, by this click sent again or by someone else
			return nil
		case OnboardingRequested:
			return Errorf(Conflict, "A pass was already requested for %s (request %s); cancel that request instead.", o.DisplayName, o.RequestID)
		}
		o.State, o.By, o.DeclinedReason, o.DecidedAt = OnboardingDeclined, by, reason, s.now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !already {
		s.recordOnboarding(ctx, EventOnboardingDeclined, o, by, "first day "+o.FirstDay)
	}
	return o, nil
}

func (s *Service) saveOnboarding(ctx context.Context, o *Onboarding) error {
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	keep := o.HireDate.Add(onboardingKept).Sub(s.now())
	if err := s.store.Remember(ctx, o.Key, string(raw), max(keep, time.Hour)); err != nil {
		return storeError(err)
	}
	return nil
}

// recordOnboarding writes an onboarding event to the trail; there is no request behind it yet.
func (s *Service) recordOnboarding(ctx context.Context, name string, o *Onboarding, actor, detail string) {
	e := Event{Time: s.now().UTC(), Event: name, Actor: actor, Target: o.UPN, TargetEntraID: o.UserID,
		TargetSlackID: o.SlackID, Reason: o.DeclinedReason, Detail: detail}
	s.log.InfoContext(ctx, "audit", "event", e.Event, "actor", e.Actor, "target", e.Target,
		"target_entra_id", e.TargetEntraID, "reason", e.Reason, "detail", e.Detail)
	if err := s.store.AppendAudit(ctx, e, s.cfg.AuditRetention); err != nil {
		s.log.ErrorContext(ctx, "audit trail not written to the store", "event", name, "err", err)
	}
	if s.sink != nil {
		s.sink(ctx, e, nil)
	}
}

// CohortEntry is one new hire in the Starting soon view: who, when, their manager, and how far
// their first-morning pass got.
type CohortEntry struct {
	UPN         string
	DisplayName string
	FirstDay    string // "2006-01-02"
	// Manager and ManagerSlackID are known once the hire was asked about.
	Manager        string
	ManagerSlackID string
	Stage          CohortStage
	RequestID      string
	// Disabled is set while the hire's account is disabled in Entra ID (HR enables it on day
	// one, usually): a pass works only once it is enabled.
	Disabled bool
	// Started is set once the first day has begun (UTC): such entries follow the upcoming ones.
	Started bool
}

// CohortStage is where a hire stands, from nobody asked to a passkey registered.
type CohortStage string

// The stages of the Starting soon view, in the order a hire goes through them.
const (
	StageNotAsked   CohortStage = "not asked"
	StageAsked      CohortStage = "asked"
	StageRequested  CohortStage = "requested"
	StageApproved   CohortStage = "approved"
	StageIssued     CohortStage = "issued"
	StageRevealed   CohortStage = "revealed"
	StageRegistered CohortStage = "passkey registered"
	StageNotNeeded  CohortStage = "not needed"
	// StageMissed is a revealed pass that ended with no passkey registered.
	StageMissed CohortStage = "ended without a passkey"
	// StageEnded is a request that ended without a pass doing its job: denied, expired, failed,
	// cancelled or revoked.
	StageEnded CohortStage = "ended"
)

// cohortSince is how long after their first day a hire stays in the view, so the manager sees
// whether the pass did its job.
const cohortSince = 7 * 24 * time.Hour

// cohortFresh is how long the hires read for the view are reused, so a team opening the Home tab
// at once costs Graph one query.
const cohortFresh = time.Minute

type cohortCache struct {
	mu    sync.Mutex
	read  time.Time
	hires []Hire
}

// cohortHires reads the hires of the view's window, reusing a read of the last cohortFresh.
func (s *Service) cohortHires(ctx context.Context) ([]Hire, error) {
	c := &s.cohort
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now()
	if !c.read.IsZero() && now.Sub(c.read) < cohortFresh && !now.Before(c.read) {
		return c.hires, nil
	}
	hires, err := s.hires.UpcomingHires(ctx, now.Add(-cohortSince), now.Add(offOrDefault(s.cfg.OnboardingNotice, DefaultOnboardingNotice)))
	if err != nil {
		return nil, fmt.Errorf("read the new hires: %w", err)
	}
	c.read, c.hires = now, hires
	return hires, nil
}

// Cohort lists the hires from a week ago to TAP_ONBOARDING_NOTICE ahead and where each stands:
// those still to start first (soonest first), then those who started (latest first). An
// approver sees all of them; anyone else only those they were asked about or requested a pass
// for, and sees nothing, rather than an error, when the hires cannot be read.
func (s *Service) Cohort(ctx context.Context, viewer string) ([]CohortEntry, error) {
	if !s.OnboardingOn() {
		return nil, nil
	}
	approver, err := s.isMember(ctx, viewer, s.cfg.Approvers)
	if err != nil {
		return nil, err
	}
	hires, err := s.cohortHires(ctx)
	if err != nil {
		if !approver {
			s.log.WarnContext(ctx, "Starting soon not shown", "user", viewer, "err", err)
			return nil, nil
		}
		return nil, err
	}
	today := s.now().UTC().Format("2006-01-02")
	var out []CohortEntry
	for _, h := range hires {
		e := CohortEntry{UPN: h.User.UPN, DisplayName: h.User.DisplayName, FirstDay: firstDayString(h.HireDate),
			Stage: StageNotAsked, Disabled: !h.Enabled}
		e.Started = e.FirstDay <= today
		o, err := s.Onboarding(ctx, onboardingKey(h.User.ID, h.HireDate))
		switch {
		case err == nil:
			e.Manager, e.ManagerSlackID, e.RequestID = o.Manager, o.ManagerSlackID, o.RequestID
			e.Stage = s.stageOf(ctx, o)
			if !approver && viewer != o.ManagerSlackID && viewer != o.By {
				continue
			}
		case ErrorCode(err) == NotFound:
			if !approver {
				continue
			}
		default:
			return out, err
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Started != b.Started {
			return !a.Started
		}
		if a.Started {
			return a.FirstDay > b.FirstDay
		}
		return a.FirstDay < b.FirstDay
	})
	return out, nil
}

// stageOf follows a hire's record, and the request made from it, to where the pass is now.
func (s *Service) stageOf(ctx context.Context, o *Onboarding) CohortStage {
	switch o.State {
	case OnboardingAsking, OnboardingAsked:
		return StageAsked
	case OnboardingDeclined:
		return StageNotNeeded
	}
	r, err := s.store.Get(ctx, o.RequestID)
	if err != nil {
		return StageRequested
	}
	switch {
	case !r.RegisteredAt.IsZero():
		return StageRegistered
	case !r.MissedAt.IsZero():
		return StageMissed
	case r.State == Revealed:
		return StageRevealed
	case r.State == Issued || r.State == Revealing:
		return StageIssued
	case r.State == Issuing:
		return StageApproved
	case r.State == Pending:
		return StageRequested
	}
	return StageEnded
}
