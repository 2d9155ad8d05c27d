package bot

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/slackrate"
)

// Form block and action IDs, read back on submission.
const (
	formTarget    = "target"
	formLifetime  = "lifetime"
	formUsage     = "usage"
	formStartDate = "start_date"
	formStartTime = "start_time"
	formReason    = "reason"
)

const (
	// formPrepTimeout bounds reading the tenant policy and the requester's time zone before the
	// form opens: Slack's trigger_id lives three seconds from the keystroke.
	formPrepTimeout = 1500 * time.Millisecond
	// formAckBudget is how long a submission may be checked before Slack must get its answer
	// (three seconds, less the trip): checks that finish in time show their errors beside the
	// fields; slower ones show a "checking" view that is updated with the outcome.
	formAckBudget = 2 * time.Second
	// defaultStartTime is offered for a pass that starts later: a new hire's first morning.
	defaultStartTime = "09:00"
)

// fieldBlocks maps the input an error is about to the form block that shows it. An error about
// the request as a whole is shown on the first input, where the eye starts.
var fieldBlocks = map[string]string{
	approvals.FieldTarget:   formTarget,
	approvals.FieldLifetime: formLifetime,
	approvals.FieldUsage:    formUsage,
	approvals.FieldStart:    formStartDate,
	approvals.FieldReason:   formReason,
	"":                      formTarget,
}

// FormSpec is what the request form offers and, when it is shown again after a late refusal,
// what it holds.
type FormSpec struct {
	Lifetimes   []time.Duration // offered, shortest first
	Default     time.Duration
	OneTimeOnly bool   // the tenant allows only one-time passes
	TZ          string // IANA zone the start time is read in; "" means UTC
	// Draft and Errors, when set, fill the form with what was submitted and show each error
	// (by block ID) under its input.
	Draft  *approvals.Draft
	Errors map[string]string
	// FixedTarget, when set, names the person the pass is for instead of offering a picker:
	// a new hire from the onboarding prompt, who is usually not in Slack yet (Draft.TargetEmail
	// holds their UPN). Onboarding is that prompt's key, so the request is noted on it.
	FixedTarget string
	Onboarding  string
}

// formMeta is what the request form carries in its private_metadata: the zone its start time is
// read in and, from an onboarding prompt, the fixed target and the prompt's key.
type formMeta struct {
	TZ          string
	TargetEmail string
	FixedTarget string
	Onboarding  string
}

// encode writes the metadata; a form with only a zone keeps the plain zone name, as before.
func (m formMeta) encode() string {
	if m.TargetEmail == "" && m.Onboarding == "" {
		return m.TZ
	}
	return url.Values{"tz": {m.TZ}, "target": {m.TargetEmail}, "for": {m.FixedTarget}, "hire": {m.Onboarding}}.Encode()
}

// parseFormMeta reads encode's output. A zone name never holds "=", so a plain one is a zone.
func parseFormMeta(s string) formMeta {
	if !strings.Contains(s, "=") {
		return formMeta{TZ: s}
	}
	v, err := url.ParseQuery(s)
	if err != nil {
		return formMeta{}
	}
	return formMeta{TZ: v.Get("tz"), TargetEmail: v.Get("target"), FixedTarget: v.Get("for"), Onboarding: v.Get("hire")}
}

// lifetimeChoices are the lifetimes offered: round values within [lo, hi], plus both ends and
// the default, so the tenant's exact limits can be picked.
func lifetimeChoices(lo, hi, def time.Duration) []time.Duration {
	day := 24 * time.Hour
	out := []time.Duration{lo, hi}
	if def >= lo && def <= hi {
		out = append(out, def)
	}
	for _, d := range []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, day, 2 * day, 3 * day, 7 * day, 14 * day, 30 * day} {
		if d > lo && d < hi {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RequestForm is the modal /tap opens.
func RequestForm(spec FormSpec) slack.ModalViewRequest {
	d := spec.Draft
	if d == nil {
		d = &approvals.Draft{Lifetime: spec.Default, UsableOnce: true}
	}
	var opts []*slack.OptionBlockObject
	var initial *slack.OptionBlockObject
	for _, l := range spec.Lifetimes {
		o := slack.NewOptionBlockObject(approvals.FormatDuration(l), plain(approvals.FormatDuration(l)), nil)
		opts = append(opts, o)
		if l == d.Lifetime || initial == nil && l == spec.Default {
			initial = o
		}
	}
	lifetime := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Lifetime"), formLifetime, opts...)
	lifetime.InitialOption = initial

	once := slack.NewOptionBlockObject("once", plain("One-time: works for one sign-in"), nil)
	multi := slack.NewOptionBlockObject("multi", plain("Multi-use: works until it expires"), nil)
	usage := slack.NewRadioButtonsBlockElement(formUsage, once, multi)
	usage.InitialOption = once
	var usageHint *slack.TextBlockObject
	if spec.OneTimeOnly {
		usage = slack.NewRadioButtonsBlockElement(formUsage, once)
		usage.InitialOption = once
		usageHint = plain("Your organisation allows only one-time passes.")
	} else if !d.UsableOnce {
		usage.InitialOption = multi
	}

	target := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Pick a person"), formTarget)
	target.InitialUser = d.TargetUserID

	zone := spec.TZ
	if zone == "" {
		zone = "UTC"
	}
	date := slack.NewDatePickerBlockElement(formStartDate)
	date.Placeholder = plain("Pick a date")
	clock := slack.NewTimePickerBlockElement(formStartTime)
	clock.InitialTime = defaultStartTime
	clock.Timezone = spec.TZ
	if !d.StartsAt.IsZero() {
		loc := location(spec.TZ)
		if loc == nil {
			loc = time.UTC
		}
		local := d.StartsAt.In(loc)
		date.InitialDate, clock.InitialTime = local.Format("2006-01-02"), local.Format("15:04")
	}

	reason := slack.NewPlainTextInputBlockElement(plain("e.g. new laptop, setting up a passkey"), formReason)
	reason.Multiline = true
	reason.MaxLength = 2000
	reason.InitialValue = d.Reason

	startDate := slack.NewInputBlock(formStartDate, plain("Start date (optional)"),
		plain("Leave empty for a pass that works as soon as it is approved. For a new hire, pick their first day."), date)
	startDate.Optional = true
	startTime := slack.NewInputBlock(formStartTime, plain("Start time"), plain("Your time ("+zone+"). Used only with a start date."), clock)
	startTime.Optional = true

	inputs := []*slack.InputBlock{
		slack.NewInputBlock(formTarget, plain("Who is the pass for?"), nil, target),
		slack.NewInputBlock(formLifetime, plain("Lifetime"), plain("How long the pass works from its start."), lifetime),
		slack.NewInputBlock(formUsage, plain("Usage"), usageHint, usage),
		startDate,
		startTime,
		slack.NewInputBlock(formReason, plain("Reason"), plain("Approvers see this."), reason),
	}
	var blocks []slack.Block
	if spec.FixedTarget != "" {
		// The person is given: shown, not picked. Errors about them show on the first input.
		blocks = append(blocks, section("*For:* "+spec.FixedTarget))
		inputs = inputs[1:]
	}
	for _, in := range inputs {
		blocks = append(blocks, in)
		if msg := spec.Errors[in.BlockID]; msg != "" {
			blocks = append(blocks, note(":warning: "+clip(escape(msg), messageShare)))
		}
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackForm,
		Title:           plain("Request a pass"),
		Submit:          plain("Request"),
		Close:           plain("Cancel"),
		PrivateMetadata: formMeta{TZ: spec.TZ, TargetEmail: targetEmail(spec), FixedTarget: spec.FixedTarget, Onboarding: spec.Onboarding}.encode(),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// targetEmail is the fixed target's address the form carries, "" when the target is picked.
func targetEmail(spec FormSpec) string {
	if spec.FixedTarget == "" || spec.Draft == nil {
		return ""
	}
	return spec.Draft.TargetEmail
}

// formSpec reads what the form may offer: lifetimes within the tenant policy and
// TAP_MAX_LIFETIME, whether only one-time passes are allowed, and the requester's time zone
// (looked up unless tz is given). A policy that cannot be read in time falls back to Entra ID's
// default minimum and TAP_MAX_LIFETIME; Submit checks the real policy anyway.
func (b *Bot) formSpec(ctx context.Context, user, tz string) (FormSpec, error) {
	prep, cancel := context.WithTimeout(ctx, formPrepTimeout)
	defer cancel()
	var policy approvals.PassPolicy
	var perr error
	var wg sync.WaitGroup
	wg.Go(func() { policy, perr = b.svc.FormPolicy(prep) })
	if tz == "" {
		wg.Go(func() { tz = b.userZone(prep, user) })
	}
	wg.Wait()
	if perr != nil {
		b.log.Warn("could not read the tenant's pass policy for the request form; offering TAP_MAX_LIFETIME's range", "err", perr)
		policy = approvals.PassPolicy{Enabled: true, MinLifetime: time.Hour}
	}
	lo, hi, def, err := b.svc.LifetimeRange(policy)
	if err != nil {
		return FormSpec{}, err
	}
	return FormSpec{Lifetimes: lifetimeChoices(lo, hi, def), Default: def, OneTimeOnly: policy.OneTimeOnly, TZ: tz}, nil
}

// openForm opens the request form for /tap alone.
func (b *Bot) openForm(ctx context.Context, cmd slack.SlashCommand) {
	spec, err := b.formSpec(ctx, cmd.UserID, "")
	if err != nil {
		b.respond(ctx, cmd.ResponseURL, ":warning: "+userMessage(err))
		return
	}
	_, err = b.openWithTrigger(ctx, cmd.TriggerID, RequestForm(spec))
	if wait, throttled := slackrate.Throttled(err); throttled {
		b.log.Warn("request form throttled past the trigger's life", "user", cmd.UserID, "retry_in", wait.String())
		b.respond(ctx, cmd.ResponseURL, fmt.Sprintf(":hourglass_flowing_sand: Slack is limiting how fast tapbot may open windows right now. Type `/tap` again in %s, or ask in one line: `/tap @person 1h once reason`.", roundWait(wait)))
		return
	}
	if err != nil {
		b.log.Error("open request form", "user", cmd.UserID, "err", err)
		b.respond(ctx, cmd.ResponseURL, "I could not open the request form. Try `/tap @person 1h once reason` instead.\n\n"+b.usageText())
	}
}

// readForm turns the request form into a draft, or into errors shown beside the fields. The
// start is read in the zone the form was opened with (its private_metadata).
func readForm(cb slack.InteractionCallback) (approvals.Draft, map[string]string) {
	var values map[string]map[string]slack.BlockAction
	if cb.View.State != nil {
		values = cb.View.State.Values
	}
	errs := map[string]string{}
	meta := parseFormMeta(cb.View.PrivateMetadata)
	d := approvals.Draft{Requester: cb.User.ID, UsableOnce: true}
	d.Onboarding = meta.Onboarding
	if meta.TargetEmail != "" {
		d.TargetEmail = meta.TargetEmail
	} else if d.TargetUserID = values[formTarget][formTarget].SelectedUser; d.TargetUserID == "" {
		errs[formTarget] = "Pick the person the pass is for."
	}
	if v := values[formLifetime][formLifetime].SelectedOption.Value; v != "" {
		l, err := approvals.ParseLifetime(v)
		if err != nil {
			errs[formLifetime] = "Pick one of the lifetimes offered."
		}
		d.Lifetime = l
	}
	d.UsableOnce = values[formUsage][formUsage].SelectedOption.Value != "multi"
	if date := values[formStartDate][formStartDate].SelectedDate; date != "" {
		clock := values[formStartTime][formStartTime].SelectedTime
		loc := location(meta.TZ)
		if loc == nil {
			loc = time.UTC
		}
		start, err := time.ParseInLocation("2006-01-02 15:04", date+" "+clock, loc)
		switch {
		case clock == "":
			errs[formStartTime] = "Pick the time the pass should start, or clear the start date."
		case err != nil:
			errs[formStartDate] = "Pick the start date from the calendar and the time from the list."
		default:
			d.StartsAt = start
		}
	}
	d.Reason = values[formReason][formReason].Value
	switch {
	case len(d.Reason) > 2000:
		errs[formReason] = "Keep the reason under 2,000 characters."
	case strings.TrimSpace(d.Reason) == "":
		errs[formReason] = "A reason is required, so approvers know why the pass is needed."
	}
	return d, errs
}

// formErrors places a refusal beside the input it is about. Slack shows these as plain text, so
// the message is not escaped, only clipped (formError).
func formErrors(err error) map[string]string {
	return map[string]string{fieldBlocks[approvals.ErrorField(err)]: formError(approvals.UserMessage(err))}
}

// formError clips one response_action error to messageShare characters, the share an error's
// sentence gets on every other surface (the same refusal drawn under its field when the form
// comes back, an ephemeral). The sentence may quote what a person typed or what Entra ID
// answered, and Slack documents no limit of its own for these errors, so they are held to a
// text object's. Characters are Unicode code points, as Slack counts them (Slack's
// python-slack-sdk validators measure len() of a str, which counts code points, not UTF-16
// units): an emoji counts one. The cut falls between whole characters and is marked with "…".
func formError(msg string) string {
	if utf8.RuneCountInString(msg) <= messageShare {
		return msg
	}
	cut := 0
	for range messageShare - 1 { // room for the ellipsis
		_, size := utf8.DecodeRuneInString(msg[cut:])
		cut += size
	}
	return strings.TrimRight(msg[:cut], " ") + ellipsis
}

type submitted struct {
	r   *approvals.Request
	err error
}

// onFormSubmission checks a submitted form. What is wrong with a field is answered at once
// beside it (response_action errors); the checks against Slack and Entra ID run while Slack
// waits, and their refusals appear beside the field too. When they take longer than Slack can
// wait, the form turns into a "checking" view and then into the outcome: the confirmation, or
// the form again with what was submitted and the refusal under its field.
func (b *Bot) onFormSubmission(evt *socketmode.Event, _ *socketmode.Client) {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		b.ack(evt, nil)
		return
	}
	d, fieldErrs := readForm(cb)
	meta := parseFormMeta(cb.View.PrivateMetadata)
	refused := func(err error) map[string]string { return placeErrors(meta, formErrors(err)) }
	if len(fieldErrs) > 0 {
		b.ack(evt, slack.NewErrorsViewSubmissionResponse(fieldErrs))
		return
	}
	// This ack waits for the checks, so deduplication cannot follow it as elsewhere (ackOnce).
	if b.duplicate(evt) {
		b.ack(evt, nil)
		return
	}
	ctx, cancel := b.work()
	defer cancel()
	ctx = slackrate.With(ctx, slackrate.Interactive) // the requester waits on the form
	done := make(chan submitted, 1)
	queued := make(chan string, 2)
	say := func(text string) {
		select {
		case queued <- text:
		default:
		}
	}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				b.log.Error("request submission panicked", "panic", fmt.Sprint(p))
				done <- submitted{err: fmt.Errorf("submission panicked: %v", p)}
			}
		}()
		// As for /tap: the profiles first, patiently, then the checks with their own time.
		b.warmProfiles(ctx, func(q slackrate.Queue) { say(checksQueuedText(q)) }, d.Requester, d.TargetUserID)
		sctx, cancel := b.work()
		defer cancel()
		sctx = withQueued(slackrate.With(sctx, slackrate.Interactive), func(r *approvals.Request, q slackrate.Queue) { say(queuedText(r, q)) })
		r, err := b.submit(sctx, d)
		done <- submitted{r, err}
	}()
	timer := time.NewTimer(formAckBudget)
	defer timer.Stop()
	var waiting *slack.ModalViewRequest // what the form shows while Slack waits for the outcome
	select {
	case s := <-done:
		if s.err != nil {
			b.ack(evt, slack.NewErrorsViewSubmissionResponse(refused(s.err)))
			return
		}
		b.ack(evt, nil)
		b.requested(ctx, meta, s.r)
		return
	case text := <-queued:
		v := MessageModal("Request queued", text)
		waiting = &v
	case <-timer.C:
		v := MessageModal("Request a pass", ":hourglass_flowing_sand: Checking your request with Entra ID…")
		waiting = &v
	}
	b.ack(evt, slack.NewUpdateViewSubmissionResponse(waiting))
	// What follows may come long after the handler's own time (a request queued behind Slack's
	// limits for minutes): the person is answered all the same.
	ctx, cancel = b.patient(ctx)
	defer cancel()
	var s submitted
	for s.r == nil && s.err == nil {
		select {
		case s = <-done:
		case text := <-queued:
			b.updateView(ctx, cb.View.ID, MessageModal("Request queued", text))
		}
	}
	if s.err != nil {
		spec, err := b.formSpec(ctx, d.Requester, meta.TZ)
		if err == nil {
			spec.Draft, spec.Errors = &d, refused(s.err)
			spec.FixedTarget, spec.Onboarding = meta.FixedTarget, meta.Onboarding
			if b.updateView(ctx, cb.View.ID, RequestForm(spec)) {
				return
			}
		}
		// The window is gone (closed, or replaced): say it where it stays.
		if _, err := b.dm(ctx, d.Requester, ":warning: Your Temporary Access Pass request was not sent: "+userMessage(s.err), nil); err != nil {
			b.log.Error("tell requester", "user", d.Requester, "err", err)
		}
		return
	}
	b.updateView(ctx, cb.View.ID, MessageModal("Request sent", ":outbox_tray: "+confirmation(s.r)))
	b.requested(ctx, meta, s.r)
}

// requested confirms a request sent from the form and, when it came from an onboarding prompt,
// notes it on the prompt.
func (b *Bot) requested(ctx context.Context, meta formMeta, r *approvals.Request) {
	if meta.Onboarding != "" {
		b.onboardingRequested(ctx, meta.Onboarding, r)
	}
	b.confirmRequest(ctx, r)
}

// placeErrors moves errors about the target to the first input when the form shows a fixed
// target, which has no input of its own to show them under (Slack refuses errors for a block
// that is not an input).
func placeErrors(meta formMeta, errs map[string]string) map[string]string {
	if meta.FixedTarget == "" {
		return errs
	}
	if msg, ok := errs[formTarget]; ok {
		delete(errs, formTarget)
		errs[formLifetime] = msg
	}
	return errs
}

// confirmRequest DMs the requester that their request went to the approvers, so they have it in
// history once the form is closed.
func (b *Bot) confirmRequest(ctx context.Context, r *approvals.Request) {
	text := ":outbox_tray: " + confirmation(r)
	if _, err := b.dm(ctx, r.Requester, text, confirmationBlocks(text, r)); err != nil {
		b.log.Error("tell requester", "user", r.Requester, "err", err)
	}
}
