package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/tapbot/tapbot/slackrate"
)

// Slack rate-limits every method per app, shared by all replicas, so what does not change is
// kept instead of asked again: a person's profile for a few minutes (users.info, Tier 4) and
// their DM channel with tapbot for good (conversations.open, Tier 3, the scarcest budget one
// request spends).

// profileTTL is how long a users.info answer is reused: long enough that one request's
// lookups (the target's email, the requester's and recipient's time zones) cost one call
// each, short enough that a deactivated account or a changed email is seen within minutes.
const profileTTL = 5 * time.Minute

// profileReadTimeout bounds one shared users.info, queue included: as long as a request's own
// messages may wait for Slack's limits.
const profileReadTimeout = 30 * time.Minute

// Profiles reads Slack profiles through a short-lived cache; its zero value is not usable,
// use NewProfiles. It is safe for concurrent use.
type Profiles struct {
	api *slack.Client
	now func() time.Time

	mu    sync.Mutex
	users map[string]cachedProfile
	// reads shares one users.info between concurrent Gets of one person (a manager's ten
	// requests in a burst), each caller waiting only as long as its own context allows.
	reads singleflight.Group
}

type cachedProfile struct {
	user *slack.User
	at   time.Time
}

// NewProfiles returns an empty cache that reads through api.
func NewProfiles(api *slack.Client) *Profiles {
	return &Profiles{api: api, now: time.Now, users: map[string]cachedProfile{}}
}

// Get returns the person's profile, from users.info at most every profileTTL. Failures are not
// kept: the next call asks Slack again.
func (p *Profiles) Get(ctx context.Context, userID string) (*slack.User, error) {
	p.mu.Lock()
	c, ok := p.users[userID]
	p.mu.Unlock()
	if ok && p.now().Sub(c.at) < profileTTL {
		return c.user, nil
	}
	prio := min(slackrate.Of(ctx), slackrate.Normal)
	ch := p.reads.DoChan(userID, func() (any, error) {
		// The shared read has its own time, so no caller inherits another's deadline.
		rctx, cancel := context.WithTimeout(slackrate.With(context.WithoutCancel(ctx), prio), profileReadTimeout)
		defer cancel()
		return p.api.GetUserInfoContext(rctx, userID)
	})
	var u *slack.User
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		u = res.Val.(*slack.User)
	case <-ctx.Done():
		return nil, fmt.Errorf("users.info %s: %w", userID, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.users) >= 10000 {
		for id, old := range p.users {
			if p.now().Sub(old.at) >= profileTTL {
				delete(p.users, id)
			}
		}
	}
	p.users[userID] = cachedProfile{user: u, at: p.now()}
	return u, nil
}

// Memo keeps facts from Slack that do not change where every replica finds them; the Redis and
// the embedded store implement it.
type Memo interface {
	// Recall returns what was remembered under key, "" when nothing (or it expired).
	Recall(ctx context.Context, key string) (string, error)
	// Remember keeps value under key for ttl; value "" forgets key.
	Remember(ctx context.Context, key, value string, ttl time.Duration) error
}

// dmChannelTTL is how long a DM channel ID is kept: Slack never changes it, so this only
// bounds what the store holds for people who left.
const dmChannelTTL = 90 * 24 * time.Hour

func dmChannelKey(user string) string { return "slack-dm:" + user }

// dmLookups is shared by a Bot's DMs; see dmChannel.
type dmLookups = singleflight.Group

// dmChannel returns the ID of tapbot's DM with user: from the memo when known (fresh false)
// unless skipMemo, from conversations.open otherwise, which is then remembered. Concurrent DMs
// to one person (a manager hearing of ten approvals at once) share one lookup, which runs on
// its own context (up to slackPatience, at the request flow's priority or better) so that no
// caller inherits another's deadline; each caller waits only as long as its own ctx allows.
func (b *Bot) dmChannel(ctx context.Context, user string, skipMemo bool) (id string, fresh bool, err error) {
	type found struct {
		id    string
		fresh bool
	}
	key := user
	if skipMemo {
		key += "!"
	}
	prio := min(slackrate.Of(ctx), slackrate.Normal)
	ch := b.dmLookups.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(slackrate.With(b.hardStop, prio), slackPatience)
		defer cancel()
		id, fresh, err := b.lookupDMChannel(lctx, user, skipMemo)
		return found{id, fresh}, err
	})
	select {
	case res := <-ch:
		f, _ := res.Val.(found)
		return f.id, f.fresh, res.Err
	case <-ctx.Done():
		return "", false, fmt.Errorf("open the DM with %s: %w", user, ctx.Err())
	}
}

func (b *Bot) lookupDMChannel(ctx context.Context, user string, skipMemo bool) (id string, fresh bool, err error) {
	if b.memo != nil && !skipMemo {
		if id, err := b.memo.Recall(ctx, dmChannelKey(user)); err == nil && id != "" {
			return id, false, nil
		} else if err != nil {
			b.log.Warn("read remembered DM channel", "user", user, "err", err)
		}
	}
	ch, _, _, err := b.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		return "", true, fmt.Errorf("conversations.open %s: %w", user, err)
	}
	if b.memo != nil {
		if err := b.memo.Remember(ctx, dmChannelKey(user), ch.ID, dmChannelTTL); err != nil {
			b.log.Warn("remember DM channel", "user", user, "err", err)
		}
	}
	return ch.ID, true, nil
}

// forgetDMChannel drops a remembered DM channel that Slack no longer accepts.
func (b *Bot) forgetDMChannel(ctx context.Context, user string) {
	if b.memo == nil {
		return
	}
	if err := b.memo.Remember(ctx, dmChannelKey(user), "", 0); err != nil {
		b.log.Warn("forget DM channel", "user", user, "err", err)
	}
}
