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
	user        string // who gets the answer as a DM when the response_url has run out

	mu   sync.Mutex
	sent chan struct{} // closed when the last note was posted; nil while none was
	said map[bool]bool // which notes were said: true the approval post's, false the checks'
}

func (b *Bot) queuedReply(responseURL, user string) *queuedReplier {
	return &queuedReplier{b: b, responseURL: responseURL, user: user}
}

// say posts a queued note without holding up the queue it reports on: for the approval post
// when r is known, for the checks' profile lookups when r is nil. Each is said once, the later
// replacing the earlier.
func (q *queuedReplier) say(r *approvals.Request, pos slackrate.Queue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.said == nil {
		q.said = map[bool]bool{}
	}
	if q.said[r != nil] {
		return
	}
	q.said[r != nil] = true
	text := checksQueuedText(pos)
	if r != nil {
		text = queuedText(r, pos)
	}
	prev, sent := q.sent, make(chan struct{})
	q.sent = sent
	go func() {
		defer close(sent)
		if prev != nil {
			<-prev
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(q.b.ctx), 10*time.Second)
		defer cancel()
		err := slack.PostWebhookCustomHTTPContext(ctx, q.responseURL, q.b.http, &slack.WebhookMessage{
			ResponseType: slack.ResponseTypeEphemeral, Text: text, ReplaceOriginal: prev != nil,
		})
		if err != nil {
			q.b.log.Warn("tell requester their request is queued", "err", withoutURL(err))
		}
	}()
}

// checksQueuedText tells a requester their request waits for its checks' Slack lookups.
func checksQueuedText(q slackrate.Queue) string {
	return fmt.Sprintf(":hourglass_flowing_sand: Your request is waiting its turn to be checked: Slack limits how fast tapbot may look people up, and many requests came at once. About %s; I will tell you here how it went.",
		roundWait(q.Wait))
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
	err := slack.PostWebhookCustomHTTPContext(ctx, q.responseURL, q.b.http, msg)
	if err == nil {
		return
	}
	// A response_url lasts 30 minutes from the command; a request queued that long is answered
	// in a DM instead, so nobody is left with the queued note.
	q.b.log.Warn("reply to slash command; answering in a DM", "err", withoutURL(err))
	var blocks2 []slack.Block
	if msg.Blocks != nil {
		blocks2 = msg.Blocks.BlockSet
	}
	if _, derr := q.b.dm(ctx, q.user, text, blocks2); derr != nil {
		q.b.log.Error("tell requester", "user", q.user, "err", derr)
	}
}
