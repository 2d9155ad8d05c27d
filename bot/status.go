package bot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
)

// statusLimit is how many requests /tap status lists: enough for a busy onboarding week, few
// enough to read at a glance and stay far inside Slack's 50 blocks.
const statusLimit = 10

// StatusBlocks lists a requester's recent requests: who each is for, where it stands, when it
// was asked, and a Cancel button on those still waiting for approval.
func StatusBlocks(rs []*approvals.Request) []slack.Block {
	if len(rs) == 0 {
		return []slack.Block{section(fmt.Sprintf("You have not asked for a Temporary Access Pass in the last %d days. Ask for one with `/tap`.",
			int(approvals.RecordRetention.Hours()/24)))}
	}
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Your recent pass requests"))}
	for _, r := range rs {
		text := fmt.Sprintf("*For:* %s\n*Lifetime:* %s\n%s\nAsked %s · request `%s`",
			targetText(r.Target), lifetimeText(r), statusLine(r), slackDate(r.CreatedAt), r.ID)
		s := section(text)
		if r.State == approvals.Pending {
			cancel := slack.NewButtonBlockElement(ActionCancel, r.ID, plain("Cancel request")).WithStyle(slack.StyleDanger)
			cancel.Confirm = slack.NewConfirmationBlockObject(plain("Cancel this request?"),
				plain("The approvers can no longer approve it, and you can ask again at once."), plain("Cancel request"), plain("Keep it"))
			s.Accessory = slack.NewAccessory(cancel)
		}
		blocks = append(blocks, slack.NewDividerBlock(), s)
	}
	blocks = append(blocks, note(fmt.Sprintf("Your %d most recent requests. Only you see this.", len(rs))))
	return blocks
}

// statusLine says where a request stands, for its requester.
func statusLine(r *approvals.Request) string {
	if r.State == approvals.Pending {
		return fmt.Sprintf(":hourglass_flowing_sand: Waiting for approval, until %s", slackDate(r.ExpiresAt))
	}
	return outcomeText(r)
}

// showStatus answers /tap status with the requester's recent requests, only to them; replace
// rewrites the list the person clicked in, after a Cancel.
func (b *Bot) showStatus(ctx context.Context, user, responseURL string, replace bool) {
	rs, err := b.svc.RecentRequests(ctx, user, statusLimit)
	if err != nil {
		b.log.Error("list recent requests", "user", user, "err", err)
		b.respond(ctx, responseURL, ":warning: "+userMessage(err))
		return
	}
	blocks := StatusBlocks(rs)
	err = slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.http, &slack.WebhookMessage{
		ResponseType: slack.ResponseTypeEphemeral, ReplaceOriginal: replace,
		Text: fmt.Sprintf("Your %d most recent Temporary Access Pass requests", len(rs)), Blocks: &slack.Blocks{BlockSet: blocks},
	})
	if err != nil {
		b.log.Error("show recent requests", "user", user, "err", withoutURL(err))
	}
}

// onCancel withdraws a pending request from /tap status. Only its requester may: the service
// checks, releases the target for a new request and records it; the approval message loses its
// buttons, the requester is told, and the list is brought up to date.
func (b *Bot) onCancel(ctx context.Context, cb slack.InteractionCallback, id string) {
	r, err := b.svc.Withdraw(ctx, id, cb.User.ID)
	if err != nil {
		if approvals.ErrorCode(err) == "" {
			b.log.Error("withdraw request", "request_id", id, "err", err)
		}
		b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		return
	}
	b.metrics.Requests.WithLabelValues(string(r.State)).Inc()
	b.updateApproval(ctx, r)
	b.tellRequester(ctx, r)
	if cb.ResponseURL != "" {
		b.showStatus(ctx, cb.User.ID, cb.ResponseURL, true)
	}
}
