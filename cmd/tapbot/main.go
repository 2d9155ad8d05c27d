// Command tapbot runs the Slack bot that issues Microsoft Entra ID Temporary Access Passes after
// an approval and lets the recipient reveal each pass exactly once.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tapbot/tapbot/config"
)

func main() {
	// The Graph SDK starts several OpenTelemetry spans per request through the global provider.
	// tapbot exports no traces, and the default global provider still allocates each span (8 % of
	// all allocations while issuing 500 passes, tapload -pprof); the no-op provider does not.
	otel.SetTracerProvider(noop.NewTracerProvider())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		// One line per problem, no stack trace: each names what to fix.
		for _, line := range errorLines(err) {
			fmt.Fprintln(os.Stderr, "tapbot: "+line)
		}
		os.Exit(1)
	}
}

// errorLines is what main prints for err: one line for each error joined in it (every
// configuration mistake of a start), and one line for any other.
func errorLines(err error) []string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, errorLines(e)...)
		}
		return out
	}
	return []string{strings.ReplaceAll(err.Error(), "\n", " ")}
}

// testHooks stays zero in production; the end-to-end tests set it when they run this binary as a
// replica they can kill at a chosen step.
var testHooks Options

func run(ctx context.Context) error {
	cmd, args := "", os.Args[1:]
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	// Every command answers -h before it reads any configuration.
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		return nil
	case "version", "-version", "--version":
		if done, err := newCommand("version", versionUsage).parse(args, os.Stdout); done {
			return err
		}
		return printVersion(os.Stdout)
	case "demo":
		if done, err := newCommand("demo", demoUsage).parse(args, os.Stdout); done {
			return err
		}
		return runDemo(ctx, os.Stdout)
	case "doctor":
		if done, err := newCommand("doctor", doctorUsage).parse(args, os.Stdout); done {
			return err
		}
		if err := config.LoadDotEnv(".env"); err != nil {
			return err
		}
		return runDoctor(ctx, os.Getenv, os.Stdout)
	case "audit":
		a, done, err := parseAudit(args, os.Stdout)
		if done {
			return err
		}
		if err := config.LoadDotEnv(".env"); err != nil {
			return err
		}
		// The trail is all audit reads: it needs the store, not the bot's Slack tokens.
		store, err := config.LoadStore(os.Getenv)
		if err != nil {
			return err
		}
		return runAudit(ctx, store.RedisURL, a, os.Stdout)
	case "passes":
		a, done, err := parsePasses(args, os.Stdout)
		if done {
			return err
		}
		if err := config.LoadDotEnv(".env"); err != nil {
			return err
		}
		cfg, err := config.LoadPasses(os.Getenv)
		if err != nil {
			return err
		}
		return runPasses(ctx, cfg, a, testHooks.Transport, os.Stdout)
	case "":
	default:
		return fmt.Errorf("unknown command %q; see tapbot help", cmd)
	}
	if err := config.LoadDotEnv(".env"); err != nil {
		return err
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	m := NewMain(cfg, testHooks)
	defer m.Close()
	if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
