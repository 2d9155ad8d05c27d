package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/config"
	"github.com/tapbot/tapbot/redisstore"
)

// errNoTrail is returned when the configuration has no shared store to read the trail from.
var errNoTrail = errors.New(`REDIS_URL is not set: with the embedded store the audit trail lives only in the running bot's log (JSON lines with "msg":"audit"); set REDIS_URL to keep and read it here`)

// auditArgs are what tapbot audit was asked for.
type auditArgs struct {
	since  time.Duration
	user   string
	asJSON bool
}

// parseAudit reads `tapbot audit [--since 24h] [--user X] [--json]`. done is true when there is
// nothing to run: -h was answered, or err says what is wrong.
func parseAudit(args []string, out io.Writer) (a auditArgs, done bool, err error) {
	c := newCommand("audit", auditUsage)
	since := c.String("since", config.AuditSince.Default, "how far back to read: a `duration` "+config.AuditSince.Range()+", e.g. 30s, 90m, 24h, 7d")
	user := c.String("user", "", "only events where this Slack user `ID`, UPN or email acted, asked or was the target")
	asJSON := c.Bool("json", false, "one JSON object a line")
	if done, err := c.parse(args, out); done {
		return a, true, err
	}
	window, err := config.AuditSince.Read(*since)
	if err != nil {
		return a, true, fmt.Errorf("audit: %w", err)
	}
	return auditArgs{since: window, user: *user, asJSON: *asJSON}, false, nil
}

// runAudit prints the audit trail kept in the Redis at redisURL; "" is the embedded store, which
// keeps the trail only in the running bot's log.
func runAudit(ctx context.Context, redisURL string, a auditArgs, out io.Writer) error {
	if redisURL == "" {
		return errNoTrail
	}
	openCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	store, err := redisstore.Open(openCtx, redisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: cannot reach Redis: %w", err)
	}
	defer store.Close()
	events, err := store.ReadAudit(ctx, time.Now().Add(-a.since))
	if err != nil {
		return err
	}
	return printAudit(out, filterAudit(events, a.user), a.asJSON)
}

func filterAudit(events []approvals.Event, user string) []approvals.Event {
	if user == "" {
		return events
	}
	var out []approvals.Event
	for _, e := range events {
		for _, v := range []string{e.Actor, e.Requester, e.TargetSlackID, e.Target, e.TargetEntraID} {
			if v != "" && strings.EqualFold(v, user) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func printAudit(out io.Writer, events []approvals.Event, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		for _, e := range events {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	if len(events) == 0 {
		_, err := fmt.Fprintln(out, "no audit events in that window")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tREQUEST\tACTOR\tTARGET\tDETAIL")
	for _, e := range events {
		actor := e.Actor
		if actor == "" {
			actor = "tapbot"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Event, e.RequestID, actor, e.Target, e.Detail)
	}
	return tw.Flush()
}
