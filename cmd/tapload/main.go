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
	short := fs.Bool("short", false, "small numbers (50 commands, 20 issuances) for a CI smoke run")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	tapbot := fs.String("tapbot", "", "a tapbot binary to measure; default: go build ./cmd/tapbot")
	commands := fs.Int("commands", 0, "slash commands per ack measurement (default 1000, -short 50)")
	concurrency := fs.Int("concurrency", 0, "slash commands in flight (default 20)")
	issuances := fs.Int("issuances", 0, "requests approved at once (default 500, -short 20)")
	clicks := fs.Int("click-concurrency", 0, "Approve clicks in flight (default 100, -short 20)")
	graphLatency := fs.Duration("graph-latency", 0, "latency the Graph fake adds to each call (default 50ms)")
	graphConcurrency := fs.Int("graph-concurrency", 0, "TAP_GRAPH_CONCURRENCY for tapbot; 0 leaves tapbot's default")
	timeout := fs.Duration("timeout", 0, "give up after this long (default 10m, -short 3m)")
	keep := fs.Bool("keep", false, "keep the working directory with tapbot's log")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	prof := fs.Bool("pprof", false, "build tapbot with a pprof server and keep CPU, heap and goroutine profiles (implies -keep)")
	var botEnv envList
	fs.Var(&botEnv, "bot-env", "`KEY=VALUE` added to tapbot's environment, for experiments (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := fullOptions()
	if *short {
		o = shortOptions()
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
	rep, err := run(ctx, o)
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
