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

	"github.com/tapbot/tapbot/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		// One line, no stack trace: the message names what to fix.
		fmt.Fprintln(os.Stderr, "tapbot: "+strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

// testHooks stays zero in production; the end-to-end tests set it when they run this binary as a
// replica they can kill at a chosen step.
var testHooks Options

func run(ctx context.Context) error {
	if err := config.LoadDotEnv(".env"); err != nil {
		return err
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "audit":
			return runAudit(ctx, cfg, os.Args[2:], os.Stdout)
		default:
			return fmt.Errorf("unknown command %q; run tapbot with no arguments to start the bot, or tapbot audit -h", os.Args[1])
		}
	}
	m := NewMain(cfg, testHooks)
	defer m.Close()
	if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
