package bot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
)

// watch looks, on this replica's turn, whether people whose pass was revealed have registered a
// passkey, security key, Windows Hello or Authenticator, and tells their requester.
func (b *Bot) watch(ctx context.Context) {
	b.onTurn(ctx, "watch", b.svc.TakeWatchTurn, func(workCtx context.Context) {
		found, err := b.svc.WatchPasses(workCtx)
		if err != nil {
			b.log.Warn("watch for new sign-in methods", "err", err)
		}
		for _, reg := range found {
			b.announceRegistration(workCtx, reg)
		}
		b.log.Debug("watched", "found", len(found))
	})
}

// announceRegistration tells the requester that the person set up a strong sign-in method with
// their pass, and what became of the rest of the pass, and updates the approval message and the
// person's DM.
func (b *Bot) announceRegistration(ctx context.Context, reg approvals.Registration) {
	r := reg.Request
	if reg.Missed {
		b.announceMissed(ctx, r)
		return
	}
	if reg.Revoked {
		b.metrics.Requests.WithLabelValues(string(r.State)).Inc()
	}
	if _, err := b.dm(ctx, r.Requester, registrationText(reg), nil); err != nil {
		b.log.Error("tell requester", "request_id", r.ID, "err", err)
	}
	b.updateApproval(ctx, r)
	b.updateRevealMessage(ctx, r)
}

// registrationText is the requester's news of a registration.
func registrationText(reg approvals.Registration) string {
	r := reg.Request
	text := fmt.Sprintf(":white_check_mark: %s registered %s with their Temporary Access Pass %s.",
		targetText(r.Target), detailText(reg.Method.Describe()), slackDate(r.RegisteredAt))
	switch {
	case reg.Revoked:
		text += " tapbot deleted the rest of the pass in Entra ID, so it can no longer be used."
	case reg.RevokeErr != nil:
		text += " tapbot could not delete the rest of the pass: " + userMessage(reg.RevokeErr) + " Revoke it from the approval message."
	default:
		text += fmt.Sprintf(" The pass stays valid until %s; revoke it from the approval message if it is no longer needed.", slackDate(r.PassExpiresAt))
	}
	return text
}

// revokedBy names who revoked a pass: a person, or tapbot itself after the person registered a
// sign-in method (TAP_REVOKE_AFTER_REGISTRATION).
func revokedBy(r *approvals.Request) string {
	if r.RevokedBy == "" {
		return "tapbot"
	}
	return "<@" + r.RevokedBy + ">"
}

// removedText says that a pass was deleted in Entra ID outside tapbot, and by whom as the audit
// log names them (escaped: directory text).
func removedText(r *approvals.Request) string {
	return "removed in Entra ID by " + nameText(r.RemovedInEntraBy)
}

// registeredNote says on the approval message and the person's DM that the pass did its job.
func registeredNote(r *approvals.Request) slack.Block {
	return note(fmt.Sprintf(":key: %s registered %s %s.", upnText(r.Target.UPN), detailText(r.Registered), slackDate(r.RegisteredAt)))
}
