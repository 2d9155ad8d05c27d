package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/slackrate"
)

// Action IDs of a tenant alert's buttons and the callback ID of its "Expected" form. Their
// values carry only the external pass's ID; the store is the truth.
const (
	ActionExternalRevoke   = "tap_ext_revoke"
	ActionExternalExpected = "tap_ext_expected"
	CallbackExpected       = "tap_ext_expected"
	// expectedBlock and expectedInput name the reason field of the "Expected" form.
	expectedBlock = "ext_reason"
	expectedInput = "reason"
)

// watchTenant reads Entra ID's audit log on this replica's turn and shows what it found: an
// alert for each pass made outside tapbot, and each tapbot pass someone deleted in Entra ID
// on its request.
func (b *Bot) watchTenant(ctx context.Context) {
	b.onTurn(ctx, "tenant watch", b.svc.TakeTenantWatchTurn, func(workCtx context.Context) {
		rep, err := b.svc.WatchTenant(workCtx)
		if err != nil {
			b.log.Warn("tenant watch: read again next turn", "err", err)
		}
		if rep.Off != nil {
			b.postNotice(workCtx, ":warning: tapbot's tenant watcher is off: "+userMessage(rep.Off)+
				" Grant the app the AuditLog.Read.All application permission (with admin consent) and restart tapbot to see passes made outside it. Everything else works.")
		}
		if g := rep.Gap; g != nil {
			b.postNotice(workCtx, fmt.Sprintf(":warning: tapbot's tenant watcher could not check %s to %s: Entra ID's audit log no longer keeps it. Passes made then outside tapbot were not seen; check them in the Entra admin center.",
				slackDate(g.From), slackDate(g.To)))
		}
		for _, p := range rep.Alerts {
			b.postExternalAlert(workCtx, p)
		}
		for _, r := range rep.Removed {
			b.metrics.Requests.WithLabelValues(string(r.State)).Inc()
			b.updateApproval(workCtx, r)
			b.updateRevealMessage(workCtx, r)
			b.tellRequester(workCtx, r)
		}
		for _, p := range rep.Deleted {
			b.updateExternalAlert(workCtx, p)
		}
	})
}

// alertChannel is where security alerts go: the audit channel, or the approval channel.
func (b *Bot) alertChannel() string {
	if b.cfg.AuditChannel != "" {
		return b.cfg.AuditChannel
	}
	return b.channel
}

// postNotice posts one line about the watcher itself where the alerts go.
func (b *Bot) postNotice(ctx context.Context, text string) {
	if _, _, err := b.api.PostMessageContext(slackrate.With(ctx, slackrate.Normal), b.alertChannel(),
		slack.MsgOptionText(clip(text, maxText), false)); err != nil {
		b.log.Error("post tenant watch notice", "err", err)
	}
}

// postExternalAlert raises a pass made outside tapbot, with Revoke and Expected.
func (b *Bot) postExternalAlert(ctx context.Context, p *approvals.ExternalPass) {
	cfg := b.svc.Config()
	// Not bulk: someone may be taking over an account.
	channel, ts, err := b.api.PostMessageContext(slackrate.With(ctx, slackrate.Normal), b.alertChannel(),
		slack.MsgOptionText(ExternalAlertText(p), false), slack.MsgOptionBlocks(ExternalAlertBlocks(p, cfg.ProtectedApprovers)...))
	if err != nil {
		b.log.Error("post alert for a pass made outside tapbot; raised again next turn", "external_id", p.ID, "err", err)
		return
	}
	if _, err := b.svc.AlertPosted(ctx, p.ID, approvals.MessageRef{Channel: channel, TS: ts}); err != nil {
		b.log.Error("record the alert's message", "external_id", p.ID, "err", err)
	}
}

// updateExternalAlert rewrites an alert for where its pass stands now.
func (b *Bot) updateExternalAlert(ctx context.Context, p *approvals.ExternalPass) {
	m := p.AlertMessage
	if m.IsZero() {
		return
	}
	ctx, cancel := b.patient(ctx)
	defer cancel()
	if cur, err := b.svc.External(ctx, p.ID); err == nil {
		p = cur
	}
	if _, _, _, err := b.api.UpdateMessageContext(ctx, m.Channel, m.TS, slack.MsgOptionText(ExternalAlertText(p), false),
		slack.MsgOptionBlocks(ExternalAlertBlocks(p, b.svc.Config().ProtectedApprovers)...)); err != nil {
		b.log.Error("update alert for a pass made outside tapbot", "external_id", p.ID, "err", err)
	}
}

// onExternalRevoke deletes exactly the pass an alert is about.
func (b *Bot) onExternalRevoke(ctx context.Context, cb slack.InteractionCallback, id string) {
	p, err := b.svc.RevokeExternal(ctx, id, cb.User.ID)
	if err != nil {
		if approvals.ErrorCode(err) == "" {
			b.log.Error("revoke a pass made outside tapbot", "external_id", id, "err", err)
		}
		b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		return
	}
	b.updateExternalAlert(ctx, p)
	b.tellClicker(ctx, cb, fmt.Sprintf(":no_entry: The pass for %s was deleted in Entra ID; it can no longer be used.", upnText(p.Pass.UserUPN)))
}

// onExternalExpected asks, in a modal, why the pass was expected.
func (b *Bot) onExternalExpected(ctx context.Context, cb slack.InteractionCallback, id string) {
	if _, err := b.openWithTrigger(ctx, cb.TriggerID, ExpectedModal(id)); err != nil {
		b.log.Error("open the Expected form", "external_id", id, "err", err)
		b.tellClicker(ctx, cb, ":warning: Slack did not open the form in time; click *Expected* again.")
	}
}

// onExpectedSubmission records who said the pass was expected, and why; a refusal is shown
// beside the reason.
func (b *Bot) onExpectedSubmission(evt *socketmode.Event, _ *socketmode.Client) {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		b.ack(evt, nil)
		return
	}
	id := cb.View.PrivateMetadata
	reason := ""
	if v, ok := cb.View.State.Values[expectedBlock][expectedInput]; ok {
		reason = v.Value
	}
	if !approvals.ValidID(id) {
		b.log.Warn("refused an Expected form with a forged ID", "user", cb.User.ID, "len", len(id))
		b.ack(evt, slack.NewErrorsViewSubmissionResponse(map[string]string{expectedBlock: "This form is not tapbot's; nothing was changed."}))
		return
	}
	if strings.TrimSpace(reason) == "" {
		b.ack(evt, slack.NewErrorsViewSubmissionResponse(map[string]string{expectedBlock: "Say why this pass was expected."}))
		return
	}
	if b.duplicate(evt) {
		b.ack(evt, nil)
		return
	}
	ctx, cancel := b.work()
	defer cancel()
	ctx = slackrate.With(ctx, slackrate.Interactive)
	p, err := b.svc.AcknowledgeExternal(ctx, id, cb.User.ID, reason)
	if err != nil {
		if approvals.ErrorCode(err) == "" {
			b.log.Error("acknowledge a pass made outside tapbot", "external_id", id, "err", err)
		}
		b.ack(evt, slack.NewErrorsViewSubmissionResponse(map[string]string{expectedBlock: clip(userMessage(err), 2000)}))
		return
	}
	b.ack(evt, nil)
	b.updateExternalAlert(ctx, p)
}

// ExpectedModal asks why a pass made outside tapbot was expected.
func ExpectedModal(id string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("e.g. the service desk made it for onboarding"), expectedInput)
	input.Multiline = true
	input.MaxLength = 2000
	block := slack.NewInputBlock(expectedBlock, plain("Why was this pass expected?"), plain("Recorded in tapbot's audit trail with your name."), input)
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: CallbackExpected, PrivateMetadata: id,
		Title: plain("Expected pass"), Submit: plain("Acknowledge"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{block}},
	}
}

// ExternalAlertText is the notification text of an alert.
func ExternalAlertText(p *approvals.ExternalPass) string {
	text := "Temporary Access Pass made outside tapbot for " + upnText(p.Pass.UserUPN)
	if p.Privileged.Privileged() {
		text = "URGENT: " + text + " (privileged account)"
	}
	return text
}

// actorText names who made or deleted a pass, from the audit log: a person or an app, by name
// (escaped: directory text).
func actorText(a approvals.AuditActor) string {
	if a.IsApp() && a.DisplayName != "" {
		return "app " + nameText(a.DisplayName)
	}
	if a.IsApp() {
		return nameText(a.Describe())
	}
	return "user " + nameText(a.Describe())
}

// ExternalAlertBlocks renders the alert for a pass made outside tapbot, for where it stands:
// for whom, made by whom, when it works, once or multi-use, whether the person is privileged,
// and Revoke and Expected while nobody answered. A privileged person's alert is urgent and
// mentions the protected approvers.
func ExternalAlertBlocks(p *approvals.ExternalPass, protectedApprovers []string) []slack.Block {
	e := p.Pass
	header := ":rotating_light: Temporary Access Pass made outside tapbot"
	if p.Privileged.Privileged() {
		header = ":rotating_light: URGENT: pass made outside tapbot for a privileged account"
	}
	who := upnText(e.UserUPN)
	if p.SlackID != "" {
		who = fmt.Sprintf("<@%s> · %s", p.SlackID, who)
	}
	when := "start and end not in the audit record"
	switch {
	case !e.StartsAt.IsZero() && !e.EndsAt.IsZero():
		when = fmt.Sprintf("from %s until %s", slackDate(e.StartsAt), slackDate(e.EndsAt))
	case !e.EndsAt.IsZero():
		when = "until " + slackDate(e.EndsAt)
	case !e.StartsAt.IsZero():
		when = "from " + slackDate(e.StartsAt)
	}
	use := map[approvals.PassUsage]string{approvals.UsageOnce: "one-time", approvals.UsageMulti: "multi-use"}[e.Usage]
	if use == "" {
		use = "not in the audit record"
	}
	priv := "no"
	switch {
	case p.Privileged.Privileged():
		priv = "*yes* (" + detailText(privilegeText(p.Privileged)) + ")"
		if len(protectedApprovers) > 0 {
			priv += " · " + clip(mentions(protectedApprovers), whoShare)
		}
	case p.PrivilegeUnknown != "":
		priv = "could not be checked: " + detailText(p.PrivilegeUnknown)
	}
	body := fmt.Sprintf("*For:* %s\n*Made by:* %s %s\n*Valid:* %s\n*Use:* %s\n*Privileged:* %s",
		who, actorText(e.By), slackDate(e.At), when, use, priv)
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(header)),
		section(clip(body, maxText)),
		note(clip(fmt.Sprintf("Made in Entra ID, not through tapbot's four eyes. Audit record `%s` · alert `%s`", detailText(e.RecordID), p.ID), maxText)),
	}
	switch p.State {
	case approvals.ExternalAlerted:
		revoke := slack.NewButtonBlockElement(ActionExternalRevoke, p.ID, plain("Revoke")).WithStyle(slack.StyleDanger)
		revoke.Confirm = slack.NewConfirmationBlockObject(plain("Revoke this pass?"),
			plain("tapbot deletes this Temporary Access Pass in Entra ID; it can no longer be used."), plain("Revoke"), plain("Keep it"))
		expected := slack.NewButtonBlockElement(ActionExternalExpected, p.ID, plain("Expected"))
		blocks = append(blocks, slack.NewActionBlock("external", revoke, expected))
	case approvals.ExternalRevoked:
		blocks = append(blocks, note(fmt.Sprintf(":no_entry: Revoked by <@%s> %s: deleted in Entra ID.", p.DecidedBy, slackDate(p.DecidedAt))))
	case approvals.ExternalAcknowledged:
		blocks = append(blocks, note(fmt.Sprintf(":white_check_mark: Expected, said <@%s> %s: %s", p.DecidedBy, slackDate(p.DecidedAt), reasonText(p.Reason))))
	case approvals.ExternalDeleted:
		blocks = append(blocks, note(fmt.Sprintf(":wastebasket: Deleted in Entra ID by %s.", actorText(p.DeletedBy))))
	}
	return blocks
}
