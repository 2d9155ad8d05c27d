package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// auditHelp reports whether args ask for audit's usage, which needs no configuration.
func auditHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			return true
		}
	}
	return false
}

// runAudit is `tapbot audit [--since 24h] [--user X] [--json]`: it prints the audit trail from
// the store, reading the same configuration as the bot.
func runAudit(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tapbot audit", flag.ContinueOnError)
	fs.SetOutput(out)
	since := fs.String("since", config.AuditSince.Default, "how far back to read, "+config.AuditSince.Range()+", e.g. 30s, 90m, 24h, 7d")
	user := fs.String("user", "", "only events where this Slack user ID, UPN or email acted, asked or was the target")
	asJSON := fs.Bool("json", false, "one JSON object a line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed; asking for it is not a failure
		}
		return fmt.Errorf("audit: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit: unexpected argument %q; see tapbot audit -h", fs.Arg(0))
	}
	window, err := config.AuditSince.Read(*since)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if cfg.RedisURL == "" {
		return errNoTrail
	}
	openCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	store, err := redisstore.Open(openCtx, cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: cannot reach Redis: %w", err)
	}
	defer store.Close()
	events, err := store.ReadAudit(ctx, time.Now().Add(-window))
	if err != nil {
		return err
	}
	return printAudit(out, filterAudit(events, *user), *asJSON)
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
