package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/tapbot/tapbot/internal/slackfake"
)

// latency summarizes a set of durations. Percentiles are nearest-rank, so p99 of 1,000 samples
// is the 990th smallest: a real observation, not an interpolation.
type latency struct {
	N     int     `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return latency{N: len(s), P50ms: ms(percentile(s, 0.50)), P99ms: ms(percentile(s, 0.99)), MaxMs: ms(s[len(s)-1])}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// command is one /tap: who types it and what follows /tap.
type command struct{ user, text string }

// slash runs n slash commands at the given concurrency and returns each one's ack latency as the
// fake measured it: from writing the envelope to reading the ack.
func slash(ctx context.Context, fake *slackfake.Server, n, concurrency int, cmd func(i int) command) ([]time.Duration, error) {
	return parallel(ctx, n, concurrency, func(ctx context.Context, i int) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c := cmd(i)
		ack, err := fake.SlashCommand(ctx, c.user, general, "/tap", c.text)
		if err != nil {
			return 0, fmt.Errorf("/tap %d: %w", i, err)
		}
		return ack.Latency, nil
	})
}

// parallel runs f for 0..n-1 on at most concurrency goroutines and collects the results in
// order; the first error stops the rest from starting.
func parallel[T any](ctx context.Context, n, concurrency int, f func(ctx context.Context, i int) (T, error)) ([]T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]T, n)
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range max(1, min(concurrency, n)) {
		wg.Go(func() {
			for i := range next {
				v, err := f(ctx, i)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				out[i] = v
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load stopped: %w", err)
	}
	return out, nil
}
