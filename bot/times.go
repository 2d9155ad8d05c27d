package bot

import (
	"context"
	"fmt"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// scheduled reports whether the pass was made to start after its approval (a new hire's first
// morning) rather than at once.
func scheduled(r *approvals.Request) bool {
	return !r.PassStartsAt.IsZero() && r.PassStartsAt.After(r.DecidedAt.Add(time.Minute))
}

// validity says when an issued pass works, in each reader's own time zone.
func validity(r *approvals.Request) string {
	if scheduled(r) {
		return fmt.Sprintf("valid from %s until %s", slackDate(r.PassStartsAt), slackDate(r.PassExpiresAt))
	}
	return "valid until " + slackDate(r.PassExpiresAt)
}

// lifetimeText is the lifetime line of a request: how long, how often, and from when when the
// requester asked for a later start.
func lifetimeText(r *approvals.Request) string {
	text := approvals.FormatDuration(r.Lifetime) + ", " + usage(r)
	if !r.StartsAt.IsZero() {
		text += "\n*Starts:* " + slackDate(r.StartsAt)
	}
	return text
}

// inZone writes a time for someone in loc, naming the zone, so the person reading it needs no
// arithmetic; with no zone known, Slack renders it in the reader's own zone.
func inZone(t time.Time, loc *time.Location) string {
	if loc == nil {
		return slackDate(t)
	}
	local := t.In(loc)
	return fmt.Sprintf("%s (%s)", local.Format("Mon 2 Jan 2006, 15:04 MST"), loc.String())
}

// userZone is the time zone a person set in Slack (users.info tz), or "" when Slack does not
// say or names a zone this system does not know.
func (b *Bot) userZone(ctx context.Context, user string) string {
	u, err := b.profiles.Get(ctx, user)
	if err != nil {
		b.log.Warn("read time zone (users.info)", "user", user, "err", err)
		return ""
	}
	if u.TZ == "" {
		return ""
	}
	if _, err := time.LoadLocation(u.TZ); err != nil {
		b.log.Warn("unknown time zone in Slack profile", "user", user, "tz", u.TZ)
		return ""
	}
	return u.TZ
}

// location loads a zone name userZone returned; nil for "".
func location(name string) *time.Location {
	if name == "" {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	return loc
}

// userLocation is userZone for showing a time to someone, bounded so a slow Slack delays a
// reveal by at most two seconds; nil when unknown.
func (b *Bot) userLocation(ctx context.Context, user string) *time.Location {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return location(b.userZone(ctx, user))
}
