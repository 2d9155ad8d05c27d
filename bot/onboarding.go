package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/slackrate"
)

// Actions and callbacks of the onboarding prompt.
const (
	ActionOnboardingRequest   = "onboarding_request"
	ActionOnboardingDecline   = "onboarding_decline"
	ActionOnboardingRetry     = "onboarding_retry"
	CallbackOnboardingDecline = "onboarding_decline"
	declineReason             = "decline_reason"
)

// onboardingEvery is how often a replica tries for the day's look-ahead turn.
const onboardingEvery = time.Hour

// onboard looks ahead for new hires once at start, then on the day's turn.
func (b *Bot) onboard(ctx context.Context) {
	first := true
	b.every(ctx, onboardingEvery, func(ctx context.Context) {
		if first {
			// At start every replica looks: per-hire claims keep a hire to one prompt.
			first = false
			workCtx, cancel := b.patient(slackrate.With(ctx, slackrate.Bulk))
			defer cancel()
			b.lookAhead(workCtx)
			return
		}
		b.onTurn(ctx, "onboarding", b.svc.TakeOnboardingTurn, b.lookAhead)
	})
}

// lookAhead prompts for each upcoming hire not yet asked about.
func (b *Bot) lookAhead(ctx context.Context) {
	prompts, err := b.svc.LookAhead(ctx)
	if err != nil {
		b.log.Warn("onboarding look-ahead", "err", err)
	}
	for _, o := range prompts {
		b.sendPrompt(ctx, o)
	}
	b.log.Debug("onboarding look-ahead done", "prompted", len(prompts))
}

// sendPrompt asks the hire's manager in a DM or, with no manager in Slack, the approval channel.
// A DM Slack refuses for good (the manager's account is deactivated or restricted, say) goes to
// the channel instead, saying so; one that failed for now is tried again at the next look-ahead.
func (b *Bot) sendPrompt(ctx context.Context, o *approvals.Onboarding) {
	var at approvals.MessageRef
	var err error
	if !o.AskedInChannel() {
		text, blocks := b.onboardingMessage(o)
		at, err = b.dm(ctx, o.ManagerSlackID, text, blocks)
		if code := slackErrorCode(err); err != nil && refusedForGood(code) {
			b.log.Warn("the new hire's manager cannot be sent a DM; asking the approval channel", "hire", o.UPN, "manager", o.Manager, "slack_error", code)
			o.Unreachable("could not be sent a DM in Slack (" + code + ")")
			err = nil
		}
	}
	if err == nil && o.AskedInChannel() {
		text, blocks := b.onboardingMessage(o)
		var ch, ts string
		ch, ts, err = b.api.PostMessageContext(ctx, b.channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		at = approvals.MessageRef{Channel: ch, TS: ts}
	}
	if err != nil {
		b.log.Error("onboarding prompt not sent; the next look-ahead tries again", "hire", o.UPN, "err", err)
		b.svc.PromptFailed(context.WithoutCancel(ctx), o)
		return
	}
	cur, err := b.svc.Prompted(ctx, o, at)
	if err != nil {
		b.log.Error("onboarding prompt sent but not recorded", "hire", o.UPN, "err", err)
		return
	}
	if cur.State != approvals.OnboardingAsked {
		b.updatePrompt(ctx, cur) // answered by a click that came before the prompt was recorded
	}
}

// refusedForGood reports whether a Slack error code says a message will never be delivered,
// rather than "later" (rate limits, outages).
func refusedForGood(code string) bool {
	switch code {
	case "", "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org":
		return false
	}
	return true
}

// onboardingMessage is the prompt's text and blocks for the state it is in.
func (b *Bot) onboardingMessage(o *approvals.Onboarding) (string, []slack.Block) {
	who := nameText(o.DisplayName) + " (" + upnText(o.UPN) + ")"
	if o.DisplayName == "" {
		who = upnText(o.UPN)
	}
	day := firstDayText(o)
	text := fmt.Sprintf("%s starts on %s", who, day)
	var head string
	if o.AskedInChannel() {
		manager := "Entra ID names no manager for them"
		if o.Manager != "" {
			why := o.ManagerWhy
			if why == "" {
				why = "is not in Slack"
			}
			manager = "their manager " + upnText(o.Manager) + " " + detailText(why)
		}
		head = fmt.Sprintf(":wave: *%s* starts on *%s*, and %s. They will need a Temporary Access Pass on their first morning to set up a passkey. Anyone who may request passes can ask for it here; another person approves, as always.", who, day, manager)
	} else {
		head = fmt.Sprintf(":wave: *%s* starts on *%s* and reports to you. They will need a Temporary Access Pass on their first morning to set up a passkey.", who, day)
	}
	blocks := []slack.Block{section(head)}
	if !o.Enabled {
		blocks = append(blocks, note(":information_source: Their account is still disabled in Entra ID. HR usually enables it on day one; the pass works only once it is, so make sure it is enabled by the time the pass starts."))
	}
	switch o.State {
	case approvals.OnboardingRequested:
		blocks = append(blocks, note(fmt.Sprintf(":outbox_tray: <@%s> asked for a first-morning pass (request `%s`).", o.By, o.RequestID)))
	case approvals.OnboardingDeclined:
		blocks = append(blocks, note(fmt.Sprintf(":no_entry_sign: Not needed, said <@%s>: %s", o.By, reasonText(o.DeclinedReason))))
	default:
		blocks = append(blocks,
			slack.NewActionBlock("onboarding",
				slack.NewButtonBlockElement(ActionOnboardingRequest, o.Key, plain("Request first-morning pass")).WithStyle(slack.StylePrimary),
				slack.NewButtonBlockElement(ActionOnboardingDecline, o.Key, plain("Not needed"))),
			note(fmt.Sprintf("The form opens filled in: a one-time pass from %s on their first day, in the time zone of whoever opens it. You can change it. The pass goes to them if they are in Slack by then, otherwise to whoever asks, to hand over.",
				b.svc.Config().OnboardingStart)))
	}
	return text, blocks
}

// firstDayText shows the hire's first day as the calendar day HR recorded.
func firstDayText(o *approvals.Onboarding) string {
	d, err := time.Parse("2006-01-02", o.FirstDay)
	if err != nil {
		return o.FirstDay
	}
	return d.Format("Monday 2 January 2006")
}

// onboardingClick reads an onboarding button's hire, checks that the clicker may answer it and
// that it is still open; on any refusal the clicker is told and ok is false.
func (b *Bot) onboardingClick(ctx context.Context, cb slack.InteractionCallback) (*approvals.Onboarding, bool) {
	if len(cb.ActionCallback.BlockActions) == 0 {
		return nil, false
	}
	o, err := b.svc.Onboarding(ctx, cb.ActionCallback.BlockActions[0].Value)
	if err == nil {
		err = b.svc.MayAnswerOnboarding(ctx, o, cb.User.ID)
	}
	if err != nil {
		b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		return nil, false
	}
	switch o.State {
	case approvals.OnboardingRequested:
		b.tellClicker(ctx, cb, fmt.Sprintf("<@%s> already asked for %s's pass (request `%s`).", o.By, nameText(o.DisplayName), o.RequestID))
		return nil, false
	case approvals.OnboardingDeclined:
		b.tellClicker(ctx, cb, fmt.Sprintf("<@%s> already said no pass is needed for %s.", o.By, nameText(o.DisplayName)))
		return nil, false
	}
	return o, true
}

// onboardingAction runs handle for a click on an onboarding button, as onClick does for a
// request's: acked at once, deduplicated across replicas, with a click's priority for Slack.
func (b *Bot) onboardingAction(handle func(ctx context.Context, cb slack.InteractionCallback)) socketmode.SocketmodeHandlerFunc {
	return func(evt *socketmode.Event, _ *socketmode.Client) {
		if !b.ackOnce(evt) {
			return
		}
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			return
		}
		ctx, cancel := b.work()
		defer cancel()
		handle(slackrate.With(ctx, slackrate.Interactive), cb)
	}
}

// openForClick opens a window for the clicker with the click's trigger_id, and tells them what
// to do when Slack would not open it (what names the window for the log).
func (b *Bot) openForClick(ctx context.Context, cb slack.InteractionCallback, v slack.ModalViewRequest, what string) {
	_, err := b.openWithTrigger(ctx, cb.TriggerID, v)
	if wait, throttled := slackrate.Throttled(err); throttled {
		b.tellClicker(ctx, cb, fmt.Sprintf(":hourglass_flowing_sand: Slack is limiting how fast tapbot may open windows right now. Click again in %s.", roundWait(wait)))
		return
	}
	if err != nil {
		b.log.Error("open "+what, "user", cb.User.ID, "err", err)
		b.tellClicker(ctx, cb, ":warning: I could not open the window; click again in a moment.")
	}
}

// onOnboardingRequest opens the request form filled in for the hire's first morning.
func (b *Bot) onOnboardingRequest(ctx context.Context, cb slack.InteractionCallback) {
	if o, ok := b.onboardingClick(ctx, cb); ok {
		b.openOnboardingForm(ctx, cb, o, false)
	}
}

// onOnboardingRetry opens the request form for a new pass, working at once, for a hire whose
// first-morning pass ended without a passkey.
func (b *Bot) onOnboardingRetry(ctx context.Context, cb slack.InteractionCallback) {
	if o, ok := b.retryClick(ctx, cb); ok {
		b.openOnboardingForm(ctx, cb, o, true)
	}
}

func (b *Bot) openOnboardingForm(ctx context.Context, cb slack.InteractionCallback, o *approvals.Onboarding, retry bool) {
	spec, err := b.formSpec(ctx, cb.User.ID, "")
	if err != nil {
		b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		return
	}
	d := &approvals.Draft{TargetEmail: o.UPN, Lifetime: spec.Default, UsableOnce: true,
		Reason: fmt.Sprintf("First-morning pass: %s starts on %s.", o.DisplayName, o.FirstDay)}
	if retry {
		d.Reason = fmt.Sprintf("New pass: %s's first-morning pass ended without a passkey.", o.DisplayName)
	} else if start, err := approvals.FirstMorning(o.HireDate, location(spec.TZ), b.svc.Config().OnboardingStart); err == nil {
		d.StartsAt = start
	} else {
		b.log.Error("first-morning start", "hire", o.UPN, "err", err)
	}
	spec.Draft = d
	spec.FixedTarget = fixedTarget(o)
	spec.Onboarding = o.Key
	b.openForClick(ctx, cb, RequestForm(spec), "first-morning form")
}

// retryClick reads the hire of an "Ask for a new pass" button and checks that the clicker may
// ask: whoever may answer the hire's prompt.
func (b *Bot) retryClick(ctx context.Context, cb slack.InteractionCallback) (*approvals.Onboarding, bool) {
	if len(cb.ActionCallback.BlockActions) == 0 {
		return nil, false
	}
	o, err := b.svc.Onboarding(ctx, cb.ActionCallback.BlockActions[0].Value)
	if err == nil && o.By != cb.User.ID {
		err = b.svc.MayAnswerOnboarding(ctx, o, cb.User.ID)
	}
	if err != nil {
		b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		return nil, false
	}
	return o, true
}

// announceMissed tells the requester, once, that a new hire's pass ended without a passkey, with
// a button to ask for a new one.
func (b *Bot) announceMissed(ctx context.Context, r *approvals.Request) {
	text := fmt.Sprintf(":warning: The first-morning pass for %s ended %s, revealed but with no passkey, security key, Windows Hello or Authenticator registered. They still cannot sign in without a password.",
		targetText(r.Target), slackDate(r.PassExpiresAt))
	blocks := []slack.Block{section(text)}
	if approvals.ValidOnboardingKey(r.Onboarding) {
		blocks = append(blocks, slack.NewActionBlock("retry",
			slack.NewButtonBlockElement(ActionOnboardingRetry, r.Onboarding, plain("Ask for a new pass")).WithStyle(slack.StylePrimary)))
	}
	if _, err := b.dm(ctx, r.Requester, text, blocks); err != nil {
		b.log.Error("tell requester of a pass that ended without a passkey; told at a later watch", "request_id", r.ID, "err", err)
		b.svc.MissedNotTold(context.WithoutCancel(ctx), r)
	}
}

// fixedTarget is how the form names a hire, who is usually not in Slack yet and so cannot be
// picked.
func fixedTarget(o *approvals.Onboarding) string {
	if o.DisplayName == "" {
		return upnText(o.UPN)
	}
	return nameText(o.DisplayName) + " (" + upnText(o.UPN) + ")"
}

// onboardingRequested records the request made from a hire's prompt and shows it on the prompt.
func (b *Bot) onboardingRequested(ctx context.Context, key string, r *approvals.Request) {
	o, err := b.svc.Requested(ctx, key, r.Requester, r.ID)
	if err != nil {
		b.log.Error("onboarding request not recorded on the hire", "request_id", r.ID, "err", err)
		return
	}
	b.updatePrompt(ctx, o)
}

// updatePrompt rewrites the prompt for its new state.
func (b *Bot) updatePrompt(ctx context.Context, o *approvals.Onboarding) {
	if o.Prompt.IsZero() {
		return
	}
	text, blocks := b.onboardingMessage(o)
	if _, _, _, err := b.api.UpdateMessageContext(ctx, o.Prompt.Channel, o.Prompt.TS,
		slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)); err != nil {
		b.log.Error("update onboarding prompt", "hire", o.UPN, "err", err)
	}
}

// onOnboardingDecline asks why no pass is needed.
func (b *Bot) onOnboardingDecline(ctx context.Context, cb slack.InteractionCallback) {
	if o, ok := b.onboardingClick(ctx, cb); ok {
		b.openForClick(ctx, cb, DeclineForm(o), "not-needed form")
	}
}

// DeclineForm asks why a hire needs no first-morning pass.
func DeclineForm(o *approvals.Onboarding) slack.ModalViewRequest {
	reason := slack.NewPlainTextInputBlockElement(plain("e.g. already set up a passkey at the office"), declineReason)
	reason.MaxLength = 500
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackOnboardingDecline,
		Title:           plain("No pass needed"),
		Submit:          plain("Record"),
		Close:           plain("Cancel"),
		PrivateMetadata: o.Key,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(fmt.Sprintf("No first-morning pass for *%s*, who starts on %s?", fixedTarget(o), firstDayText(o))),
			slack.NewInputBlock(declineReason, plain("Why not?"), plain("Kept in the audit trail."), reason),
		}},
	}
}

// onDeclineSubmission records that a hire needs no pass.
func (b *Bot) onDeclineSubmission(evt *socketmode.Event, _ *socketmode.Client) {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		b.ack(evt, nil)
		return
	}
	if b.duplicate(evt) {
		b.ack(evt, nil)
		return
	}
	var reason string
	if cb.View.State != nil {
		reason = cb.View.State.Values[declineReason][declineReason].Value
	}
	ctx, cancel := b.work()
	defer cancel()
	ctx = slackrate.With(ctx, slackrate.Interactive)
	o, err := b.svc.DeclineOnboarding(ctx, cb.View.PrivateMetadata, cb.User.ID, reason)
	if err != nil {
		var ae *approvals.Error
		if errors.As(err, &ae) && ae.Code != approvals.Unavailable {
			b.ack(evt, slack.NewErrorsViewSubmissionResponse(map[string]string{declineReason: clip(approvals.UserMessage(err), messageShare)}))
			return
		}
		b.log.Error("record not needed", "user", cb.User.ID, "err", err)
		b.ack(evt, slack.NewErrorsViewSubmissionResponse(map[string]string{declineReason: "tapbot could not record this just now; try again in a moment."}))
		return
	}
	b.ack(evt, nil)
	b.updatePrompt(ctx, o)
}
