package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// measureAcks drives the same slash commands at the floor client and at the bot, and leaves one
// pending request per issuance target behind for measureIssuance.
//
// The bot gets real requests ("/tap @person 1h once onboarding", each for a different new starter,
// five per manager), not /tap help: each one goes on to the Graph calls that resolve and check the
// target, Redis writes and Slack calls after its ack, and that work competing for the same CPUs is
// part of what a Monday morning does to ack latency.
func (w *world) measureAcks(ctx context.Context, rep *report) error {
	o := w.o
	floor, err := measureFloor(ctx, o, w.dir)
	if err != nil {
		return err
	}
	rep.Ack.Floor = floor

	// Warm the bot's connections as the floor's were warmed; help has no side effects.
	help := func(int) command { return command{user: manager, text: "help"} }
	if _, err := slash(ctx, w.slack, o.Concurrency, o.Concurrency, help); err != nil {
		return fmt.Errorf("bot warm-up: %w", err)
	}
	before := w.slack.Calls("response_url")
	cpu := w.prof.cpu(ctx, "ack", 10*time.Second)
	defer func() { <-cpu }()
	start := time.Now()
	lat, err := slash(ctx, w.slack, o.Commands, o.Concurrency, onboarding)
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	w.prof.snapshot(ctx, "ack-queued")
	rep.Ack.Bot = summarize(lat)
	for _, d := range lat {
		if d > slackfake.AckDeadline {
			rep.Ack.BotOverDeadline++
		}
	}
	rep.Ack.RatioP50 = ratio(rep.Ack.Bot.P50ms, floor.P50ms)
	rep.Ack.RatioP99 = ratio(rep.Ack.Bot.P99ms, floor.P99ms)

	// Every target needs a pending request; with fewer commands than targets, ask for the rest.
	extra := max(0, o.Issuances-o.Commands)
	if extra > 0 {
		if _, err := slash(ctx, w.slack, extra, o.Concurrency, func(i int) command { return onboarding(o.Commands + i) }); err != nil {
			return fmt.Errorf("requests for the remaining targets: %w", err)
		}
	}
	// Each request ends with one response_url reply to its requester.
	want := before + o.Commands + extra
	if err := w.waitFor(ctx, "every request to reach the approvers", 10*time.Minute, 100*time.Millisecond, func() bool {
		return w.slack.Calls("response_url") >= want
	}); err != nil {
		return err
	}
	rep.Ack.AllRequestsPostedSec = seconds(time.Since(start))
	if err := w.settle(ctx, 500*time.Millisecond, time.Minute); err != nil {
		return err
	}
	// The same number of /tap help on the now idle bot: no work follows these acks, so the
	// difference to the row above is what the queued work costs the acks, and the difference
	// to the floor is the ack path itself (envelope deduplication in Redis, parsing, routing).
	helps, err := slash(ctx, w.slack, o.Commands, o.Concurrency, help)
	if err != nil {
		return fmt.Errorf("bot, /tap help: %w", err)
	}
	rep.Ack.BotIdleHelp = summarize(helps)
	m, err := w.phasePeak()
	if err != nil {
		return err
	}
	rep.Memory.AckPeakBytes = m.PeakBytes
	return nil
}

// measureIssuance approves one pending request per target at once and times every recipient's
// Reveal DM.
func (w *world) measureIssuance(ctx context.Context, rep *report) error {
	o := w.o
	pending := w.pendingApprovals()
	targets := make([]string, o.Issuances)
	for i := range targets {
		targets[i] = targetID(i)
		if _, ok := pending[targets[i]]; !ok {
			return fmt.Errorf("no pending approval message for %s", targets[i])
		}
	}
	createsBefore := w.graph.Calls(graphfake.OpCreatePass)

	cpu := w.prof.cpu(ctx, "issuance", 5*time.Second)
	defer func() { <-cpu }()
	clicked := make([]time.Time, len(targets))
	firstClick := time.Now()
	clicks := make(chan error, 1)
	go func() {
		_, err := parallel(ctx, len(targets), o.ClickConcurrency, func(ctx context.Context, i int) (struct{}, error) {
			p := pending[targets[i]]
			clicked[i] = time.Now()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if _, err := w.slack.ClickButton(ctx, approver, p.ref, p.approve.ActionID, p.approve.Value); err != nil {
				return struct{}{}, fmt.Errorf("approve for %s: %w", targets[i], err)
			}
			return struct{}{}, nil
		})
		w.prof.snapshot(ctx, "issuance-clicked")
		clicks <- err
	}()

	dmAt := make([]time.Time, len(targets))
	remaining := len(targets)
	var tsErr error
	waitErr := w.waitFor(ctx, "every Reveal DM", 5*time.Minute, 50*time.Millisecond, func() bool {
		for i, t := range targets {
			if !dmAt[i].IsZero() {
				continue
			}
			if m, _, ok := w.revealDM(t); ok {
				at, err := tsTime(m.TS)
				if err != nil {
					tsErr = err
					return true
				}
				dmAt[i] = at
				remaining--
			}
		}
		return remaining == 0
	})
	if err := <-clicks; err != nil {
		return err
	}
	if tsErr != nil {
		return tsErr
	}
	if waitErr != nil {
		return fmt.Errorf("%d of %d recipients got no Reveal DM: %w", remaining, len(targets), waitErr)
	}

	var last time.Time
	toDM := make([]time.Duration, len(targets))
	for i := range targets {
		toDM[i] = dmAt[i].Sub(clicked[i])
		if dmAt[i].After(last) {
			last = dmAt[i]
		}
	}
	total := last.Sub(firstClick)
	is := &rep.Issuance
	is.Delivered = len(targets)
	is.AllDMsSec = seconds(total)
	is.PassesPerSec = math.Round(float64(len(targets))/total.Seconds()*10) / 10
	is.ClickToDM = summarize(toDM)
	is.GraphCreateCalls = w.graph.Calls(graphfake.OpCreatePass) - createsBefore
	is.MaxInFlightCreate = w.graph.MaxInFlight(graphfake.OpCreatePass)
	is.MaxInFlightGraph = w.graph.MaxInFlight("")

	// The Reveal DM is not the last thing an approval does (the approval message and the
	// requester are updated after it): read memory once all of it is done.
	if err := w.settle(ctx, time.Second, 2*time.Minute); err != nil {
		return err
	}
	m, err := readMemory(w.bot.pid())
	if err != nil {
		return err
	}
	mem := &rep.Memory
	mem.AfterIssuance = m
	mem.AfterGo = w.goMemory(ctx)
	mem.PeakBytes = max(mem.Idle.PeakBytes, mem.AckPeakBytes, mem.AfterIssuance.PeakBytes)
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*100) / 100
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }
