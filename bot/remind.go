package bot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/slackrate"
)

// ActionRemind is the requester's "Remind approvers" button: in the confirmation of their
// request and in their Home tab.
const ActionRemind = "tap_remind"

// followUp runs what happens after a request was made, without anyone clicking: bumping
// requests that waited TAP_REMIND_AFTER, watching revealed passes every TAP_WATCH_INTERVAL, and
// reading the tenant's audit log every TAP_TENANT_WATCH_INTERVAL. Each takes its own turn, so
// one replica at a time does it.
func (b *Bot) followUp(ctx context.Context) {
	b.remindDue(ctx)
	b.watch(ctx)
	b.watchTenant(ctx)
}

// remindDue bumps every request that is due a reminder, if it is this replica's turn.
func (b *Bot) remindDue(ctx context.Context) {
	b.onTurn(ctx, "reminder", func(ctx context.Context) (bool, error) { return b.svc.TakeRemindTurn(ctx, b.cfg.SweepEvery) },
		func(workCtx context.Context) {
			due, err := b.svc.DueReminders(workCtx)
			if err != nil {
				b.log.Error("reminders", "err", err)
			}
			for _, r := range due {
				if err := b.postReminder(workCtx, r, ""); err != nil {
					b.log.Error("post reminder", "request_id", r.ID, "err", err)
				}
			}
		})
}

// onRemind is the requester's one reminder, from their confirmation or their Home tab.
func (b *Bot) onRemind(ctx context.Context, cb slack.InteractionCallback, id string) {
	r, err := b.svc.Remind(ctx, id, cb.User.ID)
	if err != nil {
		if approvals.ErrorCode(err) == "" {
			b.log.Error("remind", "request_id", id, "err", err)
		}
		b.answer(ctx, cb, ":warning: "+userMessage(err))
		return
	}
	if err := b.postReminder(ctx, r, cb.User.ID); err != nil {
		b.log.Error("post reminder", "request_id", id, "err", err)
		b.answer(ctx, cb, ":warning: I could not post the reminder to the approvers (Slack refused). Ask an approver directly.")
		return
	}
	b.answer(ctx, cb, fmt.Sprintf(":bell: I reminded %s about your request for %s. You can send one reminder per request.",
		mentions(b.askedToDecide(r)), targetText(r.Target)))
}

// askedToDecide is who a reminder mentions: the manager when the request went to their DM,
// the approvers otherwise.
func (b *Bot) askedToDecide(r *approvals.Request) []string {
	if r.Manager != "" && r.ApprovalMessage.Channel != b.channel {
		return []string{r.Manager}
	}
	return b.svc.ApproversFor(r)
}

// postReminder bumps a pending request with a threaded reply under its approval message that
// mentions who can decide; by is the requester who asked for it, or "" when tapbot bumps it.
func (b *Bot) postReminder(ctx context.Context, r *approvals.Request, by string) error {
	m := r.ApprovalMessage
	if m.IsZero() {
		return fmt.Errorf("request %s has no approval message to remind under", r.ID)
	}
	var text string
	if by == "" {
		text = fmt.Sprintf(":bell: Still waiting: <@%s>'s request for %s has had no decision for %s. %s, please approve or deny it above (it can be approved until %s).",
			r.Requester, targetText(r.Target), approvals.FormatDuration(r.RemindedAt.Sub(r.CreatedAt)), mentions(b.askedToDecide(r)), slackDate(r.ExpiresAt))
	} else {
		text = fmt.Sprintf(":bell: <@%s> is asking for a decision on this request for %s (waiting %s). %s, please approve or deny it above.",
			by, targetText(r.Target), approvals.FormatDuration(r.RequesterRemindedAt.Sub(r.CreatedAt)), mentions(b.askedToDecide(r)))
	}
	// tapbot's own reminders are bulk; one the requester clicked for has them waiting.
	prio := slackrate.Bulk
	if by != "" {
		prio = slackrate.Normal
	}
	if _, _, err := b.api.PostMessageContext(slackrate.With(ctx, prio), m.Channel, slack.MsgOptionText(text, false), slack.MsgOptionTS(m.TS)); err != nil {
		return fmt.Errorf("chat.postMessage reminder: %w", err)
	}
	return nil
}

// answer tells the person who clicked how it went: in their Home tab, republished, when they
// clicked there, and in a message only they see otherwise.
func (b *Bot) answer(ctx context.Context, cb slack.InteractionCallback, text string) {
	if cb.Container.Type == "view" && cb.View.Type == slack.VTHomeTab {
		b.publishHome(ctx, cb.User.ID, text)
		return
	}
	b.tellClicker(ctx, cb, text)
}

// confirmationBlocks is the requester's confirmation with their one "Remind approvers" button.
func confirmationBlocks(text string, r *approvals.Request) []slack.Block {
	return []slack.Block{
		section(text),
		slack.NewActionBlock("remind", slack.NewButtonBlockElement(ActionRemind, r.ID, plain("Remind approvers"))),
		note("No decision yet? You can remind the approvers once."),
	}
}

// respondBlocks replies to a slash command through its response_url with blocks, visible only
// to its author.
func (b *Bot) respondBlocks(ctx context.Context, responseURL, text string, blocks []slack.Block) {
	err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.http, &slack.WebhookMessage{
		ResponseType: slack.ResponseTypeEphemeral, Text: text, Blocks: &slack.Blocks{BlockSet: blocks},
	})
	if err != nil {
		b.log.Error("reply to slash command", "err", withoutURL(err))
	}
}
