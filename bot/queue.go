package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/slackrate"
)

// A burst of requests (a cohort's first morning) queues behind Slack's limit on posts to the
// approval channel, about one a second. Whoever filed a queued request hears so at once, with
// its place, instead of a confirmation that pretends it reached the approvers.

type queuedKey struct{}

// queuedFunc hears that a request's approval post must queue, and where it stands.
type queuedFn func(*approvals.Request, slackrate.Queue)

// withQueued makes postApproval call f if the approval post must queue.
func withQueued(ctx context.Context, f queuedFn) context.Context {
	return context.WithValue(ctx, queuedKey{}, f)
}

func queuedFunc(ctx context.Context) queuedFn {
	f, _ := ctx.Value(queuedKey{}).(queuedFn)
	return f
}

// queuedText tells a requester their request waits for Slack.
func queuedText(r *approvals.Request, q slackrate.Queue) string {
	ahead := "It is next in line"
	switch {
	case q.Ahead == 1:
		ahead = "1 request goes before it"
	case q.Ahead > 1:
		ahead = fmt.Sprintf("%d requests go before it", q.Ahead)
	}
	return fmt.Sprintf(":hourglass_flowing_sand: Your request for %s passed every check and is queued: Slack limits how fast tapbot may post to the approvers, and many requests came at once. %s; the approvers should see it in about %s. I will confirm here when they do.",
		targetText(r.Target), ahead, roundWait(q.Wait))
}

// roundWait says a wait the way a person reads it: seconds under a minute, then minutes.
func roundWait(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", max(1, int(d.Round(time.Second)/time.Second)))
	}
	m := int((d + 30*time.Second) / time.Minute)
	if m == 1 {
		return "a minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

// queuedReply answers a slash command whose request may queue: say posts the "queued" note
// once, and reply then replaces it with the outcome, in that order.
type queuedReplier struct {
	b           *Bot
	responseURL string

	mu   sync.Mutex
	sent chan struct{} // closed when the note was posted; nil while none was
}

func (b *Bot) queuedReply(responseURL string) *queuedReplier {
	return &queuedReplier{b: b, responseURL: responseURL}
}

// say posts the queued note without holding up the queue it reports on.
func (q *queuedReplier) say(r *approvals.Request, pos slackrate.Queue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sent != nil {
		return
	}
	q.sent = make(chan struct{})
	go func() {
		defer close(q.sent)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(q.b.ctx), 10*time.Second)
		defer cancel()
		q.b.respond(ctx, q.responseURL, queuedText(r, pos))
	}()
}

// reply answers with the outcome, replacing the queued note when there was one.
func (q *queuedReplier) reply(ctx context.Context, text string, blocks []slack.Block) {
	q.mu.Lock()
	sent := q.sent
	q.mu.Unlock()
	msg := &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: text}
	if len(blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: blocks}
	}
	if sent != nil {
		select {
		case <-sent:
		case <-ctx.Done():
		}
		msg.ReplaceOriginal = true
	}
	if err := slack.PostWebhookCustomHTTPContext(ctx, q.responseURL, q.b.http, msg); err != nil {
		q.b.log.Error("reply to slash command", "err", withoutURL(err))
	}
}
