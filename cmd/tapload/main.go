// Command tapload measures tapbot under load, next to the floor of its own stack, and prints
// the figures BENCHMARKS.md publishes.
//
// It starts the Slack fake (Web API and socket mode), the Entra/Graph fake with 50 ms of latency
// per Graph call, its own redis-server on 127.0.0.1, and the real tapbot as a child process
// configured only through its environment, exactly as an operator would run it. Then it measures,
// in one run:
//
//   - ack latency of 1,000 /tap commands at concurrency 20, at tapbot and at a bare slack-go
//     socket-mode client that acks at once (the floor), and their ratio;
//   - issuance: 500 pending requests approved at once, until every recipient has a Reveal DM;
//   - Redis commands per request lifecycle, from INFO commandstats;
//   - tapbot's resident memory idle and after the issuance run, from /proc.
//
// Everything stays on 127.0.0.1, every loop is bounded in count and time, and the command stops
// by itself. It exits non-zero only when the run itself fails; a missed target is reported.
//
// Usage:
//
//	go run ./cmd/tapload            # the published run
//	go run ./cmd/tapload -short     # the CI smoke run
//	go run ./cmd/tapload -json      # the report as JSON
//
// Those runs measure tapbot itself, so Slack's rate limits are off on both sides (the fake
// throttles nothing, tapbot runs with TAP_SLACK_PACING=off), and the report says so. The burst
// mode measures tapbot against Slack's published limits instead, the fake throttling like Slack
// at speed 1 and tapbot pacing its calls as in production:
//
//	go run ./cmd/tapload -burst         # 100 requests from 10 managers, approved as they appear
//	go run ./cmd/tapload -burst -short  # the CI smoke: 8 requests from 2 managers
//
// It reports the time from the first /tap to the last Reveal DM next to the floor (the least
// time the fake's buckets allow for the Slack calls the burst made), their ratio, the 429s and
// the Slack calls per request lifecycle by method. A published burst takes a few minutes: Slack
// allows most methods 50 calls a minute.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(floorEnv) == "1" {
		if err := runFloorClient(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "tapload floor client:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(cli(ctx, os.Args[1:]))
}

// cli parses flags, runs the load and prints the report; it returns the exit code.
func cli(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("tapload", flag.ContinueOnError)
	short := fs.Bool("short", false, "small numbers (50 commands, 20 issuances; with -burst 8 requests from 2 managers) for a CI smoke run")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	tapbot := fs.String("tapbot", "", "a tapbot binary to measure; default: go build ./cmd/tapbot")
	commands := fs.Int("commands", 0, "slash commands per ack measurement (default 1000, -short 50)")
	concurrency := fs.Int("concurrency", 0, "slash commands in flight (default 20)")
	issuances := fs.Int("issuances", 0, "requests approved at once (default 500, -short 20)")
	clicks := fs.Int("click-concurrency", 0, "Approve clicks in flight (default 100, -short 20)")
	graphLatency := fs.Duration("graph-latency", 0, "latency the Graph fake adds to each call (default 50ms)")
	graphConcurrency := fs.Int("graph-concurrency", 0, "TAP_GRAPH_CONCURRENCY for tapbot; 0 leaves tapbot's default")
	timeout := fs.Duration("timeout", 0, "give up after this long (default 10m, -burst 30m, -short 3m)")
	keep := fs.Bool("keep", false, "keep the working directory with tapbot's log")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	prof := fs.Bool("pprof", false, "build tapbot with a pprof server and keep CPU, heap and goroutine profiles (implies -keep)")
	burst := fs.Bool("burst", false, "the burst mode: requests from several managers at once, approved as they appear, against Slack's published rate limits with tapbot's pacing on")
	burstRequests := fs.Int("burst-requests", 0, "requests in the burst, one per new starter (default 100, -short 8)")
	burstManagers := fs.Int("burst-managers", 0, "managers filing the burst's requests (default 10, -short 2)")
	var botEnv envList
	fs.Var(&botEnv, "bot-env", "`KEY=VALUE` added to tapbot's environment, for experiments (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tapload: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var misplaced []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "commands", "concurrency", "issuances", "click-concurrency", "pprof":
			if *burst {
				misplaced = append(misplaced, "-"+f.Name)
			}
		case "burst-requests", "burst-managers":
			if !*burst {
				misplaced = append(misplaced, "-"+f.Name)
			}
		}
	})
	if len(misplaced) > 0 {
		what := "without -burst"
		if *burst {
			what = "with -burst"
		}
		fmt.Fprintf(os.Stderr, "tapload: %s cannot be used %s\n", strings.Join(misplaced, ", "), what)
		return 2
	}
	o := fullOptions()
	switch {
	case *burst && *short:
		o = shortBurstOptions()
	case *burst:
		o = fullBurstOptions()
	case *short:
		o = shortOptions()
	}
	if o.Burst != nil {
		if *burstRequests > 0 {
			o.Burst.Requests = *burstRequests
		}
		if *burstManagers > 0 {
			o.Burst.Managers = *burstManagers
		}
	}
	override := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	override(&o.Commands, *commands)
	override(&o.Concurrency, *concurrency)
	override(&o.Issuances, *issuances)
	override(&o.ClickConcurrency, *clicks)
	override(&o.GraphConcurrency, *graphConcurrency)
	if *graphLatency > 0 {
		o.GraphLatency = *graphLatency
	}
	if *timeout > 0 {
		o.Timeout = *timeout
	}
	o.Tapbot, o.KeepDir, o.Profile, o.BotEnv = *tapbot, *keep || *prof, *prof, botEnv
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	start := time.Now()
	var (
		rep interface{ table() string }
		err error
	)
	if o.Burst != nil {
		var br burstReport
		br, err = runBurst(ctx, o)
		rep = &br
	} else {
		var lr report
		lr, err = run(ctx, o)
		rep = &lr
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else if err == nil {
		fmt.Print(rep.table())
	}
	if err != nil {
		o.Log.Error("tapload failed", "after", time.Since(start).Round(time.Millisecond).String(), "err", err)
		return 1
	}
	o.Log.Info("tapload done", "took", time.Since(start).Round(time.Millisecond).String())
	return 0
}

// envList collects repeated -bot-env flags.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}
