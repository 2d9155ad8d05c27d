package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/internal/slackfake"
)

// floorEnv turns the tapload binary (or its test binary) into the floor client when set to 1.
// Re-running the same executable keeps tapload one self-contained command, and running the floor
// as its own process, like the bot, keeps the comparison fair: neither shares a Go scheduler with
// the fakes and the load driver.
const floorEnv = "TAPLOAD_FLOOR_CLIENT"

// runFloorClient is the floor of tapbot's stack: the same slack-go socket-mode client tapbot uses,
// acknowledging every envelope the moment it arrives and doing nothing else. tapbot cannot ack
// faster than this, so its ack latency is judged against it.
func runFloorClient(ctx context.Context) error {
	api := slack.New(os.Getenv("SLACK_BOT_TOKEN"),
		slack.OptionAppLevelToken(os.Getenv("SLACK_APP_TOKEN")), slack.OptionAPIURL(os.Getenv("SLACK_API_URL")))
	sm := socketmode.New(api)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request != nil && evt.Request.EnvelopeID != "" {
					_ = sm.Ack(*evt.Request)
				}
			}
		}
	}()
	err := sm.RunContext(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("socket mode stopped")
	}
	return fmt.Errorf("floor client: %w", err)
}

// measureFloor starts a fresh Slack fake and the floor client against it, and drives the same
// slash commands at it that the bot gets.
func measureFloor(ctx context.Context, o options, dir string) (latency, error) {
	fake := slackfake.New(slackfake.Options{BotToken: botToken, AppToken: appToken, RateLimits: &slackfake.RateLimits{Off: true}})
	defer fake.Close()
	fake.AddUser(slackfake.User{ID: manager, Name: "manager", Email: "manager@example.com"})
	for i := range (o.targets() + startersPerManager - 1) / startersPerManager {
		fake.AddUser(slackfake.User{ID: managerID(i), Name: strings.ToLower(managerID(i))})
	}
	fake.AddChannel(general)

	env := []string{floorEnv + "=1", "SLACK_API_URL=" + fake.APIURL(),
		"SLACK_BOT_TOKEN=" + botToken, "SLACK_APP_TOKEN=" + appToken}
	c, err := startChild("floor client", o.Self, nil, env, dir, filepath.Join(dir, "floor.log"))
	if err != nil {
		return latency{}, err
	}
	defer func() { _ = c.stop(10 * time.Second) }()
	if err := waitConnected(ctx, fake, c); err != nil {
		return latency{}, err
	}
	help := func(int) command { return command{user: manager, text: "help"} }
	if _, err := slash(ctx, fake, o.Concurrency, o.Concurrency, help); err != nil {
		return latency{}, fmt.Errorf("floor warm-up: %w", err)
	}
	lat, err := slash(ctx, fake, o.Commands, o.Concurrency, onboarding)
	if err != nil {
		return latency{}, fmt.Errorf("floor: %w", err)
	}
	return summarize(lat), nil
}

// waitConnected waits until the process behind c holds a socket-mode connection to fake.
func waitConnected(ctx context.Context, fake *slackfake.Server, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := fake.WaitFor(ctx, func() bool { return fake.ConnectionCount() > 0 || c.exited() != nil })
	if err := c.exited(); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("%s did not open a socket-mode connection: %w", c.name, err)
	}
	return nil
}
