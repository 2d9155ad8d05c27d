package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/config"
	"github.com/tapbot/tapbot/graph"
	"github.com/tapbot/tapbot/redisstore"
)

const passesUsage = `Usage: tapbot passes [--since DURATION] [--json]

Lists every Temporary Access Pass that Entra ID's audit log shows made in the tenant, whoever
made it, with its origin (the tapbot request that issued it, or who made it outside tapbot) and
its state: active, ended, deleted (in Entra ID, outside tapbot), revoked (from tapbot),
acknowledged (said to be expected from its alert) or unseen (not read by tapbot's watcher yet, or
made before it started). Reads REDIS_URL (or REDIS_URL_FILE), GRAPH_BASE_URL and the AZURE_*
sign-in from the environment and ./.env; needs AuditLog.Read.All, and no Slack token.

`

// passesArgs are what tapbot passes was asked for.
type passesArgs struct {
	since  time.Duration
	asJSON bool
}

// parsePasses reads `tapbot passes [--since 7d] [--json]`; done as for parseAudit.
func parsePasses(args []string, out io.Writer) (a passesArgs, done bool, err error) {
	c := newCommand("passes", passesUsage)
	since := c.String("since", config.PassesSince.Default, "how far back to read: a `duration` "+config.PassesSince.Range()+", e.g. 90m, 24h, 7d")
	asJSON := c.Bool("json", false, "one JSON object a line")
	if done, err := c.parse(args, out); done {
		return a, true, err
	}
	window, err := config.PassesSince.Read(*since)
	if err != nil {
		return a, true, fmt.Errorf("passes: %w", err)
	}
	return passesArgs{since: window, asJSON: *asJSON}, false, nil
}

// errNoPassStore is returned when there is no shared store to tell tapbot's passes apart.
var errNoPassStore = errors.New("REDIS_URL is not set: with the embedded store tapbot keeps nothing between runs, so it cannot tell its own passes apart here; set REDIS_URL")

// runPasses prints the tenant's passes from the audit log and the store.
// transport carries Graph requests; nil is the SDK's default (tests trust their fake's
// certificate with one).
func runPasses(ctx context.Context, cfg config.Passes, a passesArgs, transport http.RoundTripper, out io.Writer) error {
	if cfg.RedisURL == "" {
		return errNoPassStore
	}
	openCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	store, err := redisstore.Open(openCtx, cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: cannot reach Redis: %w", err)
	}
	defer store.Close()
	cred, err := graph.NewCredential(transport)
	if err != nil {
		return fmt.Errorf("AZURE_*: %w", err)
	}
	dir, err := graph.New(cred, graph.Options{BaseURL: cfg.GraphBaseURL, Transport: transport})
	if err != nil {
		return fmt.Errorf("GRAPH_BASE_URL: %w", err)
	}
	var own []string
	if cfg.OwnAppID != "" {
		own = []string{cfg.OwnAppID}
	}
	id, err := dir.AppID(ctx)
	if err != nil {
		return signInFailure(err)
	}
	own = appendApp(own, id)
	now := time.Now()
	passes, err := approvals.TenantPasses(ctx, store, dir, own, now.Add(-a.since), now)
	if err != nil {
		return fmt.Errorf("passes: %s", approvals.UserMessage(err))
	}
	return printPasses(out, passes, a.asJSON)
}

// passLine is a pass as `tapbot passes --json` prints it.
type passLine struct {
	CreatedAt  time.Time `json:"created_at"`
	User       string    `json:"user"`
	PassID     string    `json:"pass_id,omitempty"`
	StartsAt   time.Time `json:"starts_at,omitzero"`
	EndsAt     time.Time `json:"ends_at,omitzero"`
	Usage      string    `json:"usage,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
	MadeBy     string    `json:"made_by"`
	ExternalID string    `json:"alert_id,omitempty"`
	State      string    `json:"state"`
}

func printPasses(out io.Writer, passes []approvals.TenantPass, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		for _, p := range passes {
			if err := enc.Encode(passLine{p.CreatedAt.UTC(), p.UserUPN, p.PassID, p.StartsAt, p.EndsAt, string(p.Usage),
				p.RequestID, p.MadeBy, p.ExternalID, p.State}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(passes) == 0 {
		_, err := fmt.Fprintln(out, "no passes in the audit log in that window")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tUSER\tORIGIN\tSTATE\tENDS")
	for _, p := range passes {
		origin := "request " + p.RequestID
		if p.RequestID == "" {
			origin = "outside tapbot: " + p.MadeBy
			if p.MadeBy == "tapbot" {
				origin = "tapbot (no request)"
			}
		}
		ends := "-"
		if !p.EndsAt.IsZero() {
			ends = p.EndsAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.CreatedAt.UTC().Format(time.RFC3339), p.UserUPN, origin, p.State, ends)
	}
	return tw.Flush()
}
