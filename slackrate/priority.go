package slackrate

import (
	"context"
	"time"
)

// Priority orders calls that wait for the same bucket: Interactive before Normal before Bulk,
// and first come, first served within one.
type Priority int

const (
	// Interactive is a person waiting on a click: the modal a trigger_id opens, an ephemeral
	// answer, the message they clicked on.
	Interactive Priority = iota
	// Normal is the request flow itself: the approval message, the Reveal DM.
	Normal
	// Bulk is notification nobody is waiting on: requester DMs, audit posts, reminders, App
	// Home republishing.
	Bulk
)

// String is the priority's metric label.
func (p Priority) String() string {
	switch p {
	case Interactive:
		return "interactive"
	case Bulk:
		return "bulk"
	}
	return "normal"
}

type priorityKey struct{}

// With marks the Slack calls made with ctx as priority p.
func With(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// Of is the priority of calls made with ctx: Normal unless With said otherwise.
func Of(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return Normal
}

// Queue is what a call that had to queue learns of its place: how many calls for the same
// bucket go before it on this replica, and about how long until it goes out.
type Queue struct {
	Ahead int
	Wait  time.Duration
}

type queuedKey struct{}

// queuedAfter is how long a call must expect to wait before its OnQueued function hears of it.
const queuedAfter = 2 * time.Second

// OnQueued returns a ctx whose Slack calls call f, once per call and before waiting, when they
// must wait two seconds or more for Slack's limits; the request flow uses it to tell a
// requester honestly that their request is queued. f must return quickly.
func OnQueued(ctx context.Context, f func(Queue)) context.Context {
	return context.WithValue(ctx, queuedKey{}, f)
}

func onQueued(ctx context.Context) func(Queue) {
	f, _ := ctx.Value(queuedKey{}).(func(Queue))
	return f
}
