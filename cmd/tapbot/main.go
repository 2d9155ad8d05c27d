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

const usage = `tapbot: Temporary Access Passes for Microsoft Entra ID, approved in Slack and revealed once.

Usage:
  tapbot            run the bot (configuration from the environment and ./.env; see README.md)
  tapbot doctor     check the configuration and every connection, and say how to fix what fails
  tapbot demo       play the whole flow against built-in simulations of Slack and Entra ID
  tapbot audit      print the audit trail (tapbot audit -h)
`

func run(ctx context.Context) error {
	cmd, args := "", os.Args[1:]
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	case "demo":
		return runDemo(ctx, os.Stdout)
	case "audit":
		if auditHelp(args) {
			return runAudit(ctx, config.Config{}, []string{"-h"}, os.Stdout)
		}
	case "", "doctor":
	default:
		return fmt.Errorf("unknown command %q; see tapbot help", cmd)
	}
	if err := config.LoadDotEnv(".env"); err != nil {
		return err
	}
	if cmd == "doctor" {
		return runDoctor(ctx, os.Getenv, os.Stdout)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	if cmd == "audit" {
		return runAudit(ctx, cfg, args, os.Stdout)
	}
	m := NewMain(cfg, testHooks)
	defer m.Close()
	if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
