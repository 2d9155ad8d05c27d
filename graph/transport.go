package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// callState travels in the context of one Directory call down to attemptTransport, underneath the
// SDK's middleware: kiota builds each HTTP request with the caller's context, so this is the only
// way the transport learns which operation an attempt belongs to. It also remembers the last
// status Graph answered, so a call that runs out of time while the SDK waits out a Retry-After is
// reported as throttling rather than as silence.
type callState struct {
	op         operation
	lastStatus atomic.Int32
}

type callStateKey struct{}

func withCallState(ctx context.Context, op operation) context.Context {
	return context.WithValue(ctx, callStateKey{}, &callState{op: op})
}

func callStateFrom(ctx context.Context) *callState {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// attemptTransport sits between the SDK's middleware and the parent transport, so it sees every
// HTTP attempt the SDK's retry handler makes, and only those: token requests go through the
// credential's own transport. Working per attempt keeps the retry handler (which honours
// Retry-After on 429 and 503) in charge of retries, while this layer
//   - bounds how many attempts are on the wire at once across the Client, so a burst of approvals
//     cannot make tapbot throttle itself against Graph's per-app limits;
//   - gives each attempt its own deadline, so one hung connection cannot eat the whole call's
//     time budget silently;
//   - reports each attempt's outcome to the metrics hook.
type attemptTransport struct {
	parent  http.RoundTripper
	slots   chan struct{} // one token per attempt in flight
	timeout time.Duration // per attempt
	observe func(operation string, status int)
	queued  atomic.Int32 // callers waiting for a slot, for tests
}

func newAttemptTransport(parent http.RoundTripper, concurrency int, timeout time.Duration, observe func(string, int)) *attemptTransport {
	return &attemptTransport{
		parent:  parent,
		slots:   make(chan struct{}, concurrency),
		timeout: timeout,
		observe: observe,
	}
}

// queueError is returned when the caller's context ends while it waits for a slot: nothing was
// sent to Graph, which classify tells the user in its own words.
type queueError struct{ err error }

func (e *queueError) Error() string {
	return "graph: gave up waiting for a free Microsoft Graph slot: " + e.err.Error()
}
func (e *queueError) Unwrap() error { return e.err }

// attemptTimeoutError is one attempt running past Options.AttemptTimeout while the call itself
// still had time. It unwraps to context.DeadlineExceeded and is a net.Error timeout, so every
// layer above treats it as the timeout it is.
type attemptTimeoutError struct {
	timeout time.Duration
	cause   error
}

func (e *attemptTimeoutError) Error() string {
	return fmt.Sprintf("graph: Microsoft Graph did not answer within %s (per-attempt timeout): %v", e.timeout, e.cause)
}
func (e *attemptTimeoutError) Unwrap() error { return context.DeadlineExceeded }
func (e *attemptTimeoutError) Timeout() bool { return true }

// RoundTrip waits for a slot (or for the caller to give up), then sends one attempt under its own
// deadline. The slot is released when Graph's answer (status and headers) arrives rather than
// when the body is closed, because the SDK's retry handler drops the responses it retries without
// closing them; the body is still read under the attempt's deadline.
func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := t.acquire(ctx); err != nil {
		return nil, err
	}
	st := callStateFrom(ctx)
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	resp, err := t.parent.RoundTrip(req.WithContext(actx))
	<-t.slots

	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	if st != nil {
		st.lastStatus.Store(int32(status))
	}
	if t.observe != nil {
		t.observe(st.name(), status)
	}
	if err != nil {
		cancel()
		return nil, t.attemptError(ctx, actx, err)
	}
	resp.Body = &attemptBody{ReadCloser: resp.Body, t: t, ctx: ctx, actx: actx, cancel: cancel}
	return resp, nil
}

// acquire takes a slot, or gives up when ctx ends first.
func (t *attemptTransport) acquire(ctx context.Context) error {
	select {
	case t.slots <- struct{}{}:
		return nil
	default:
	}
	t.queued.Add(1)
	defer t.queued.Add(-1)
	select {
	case t.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &queueError{err: ctx.Err()}
	}
}

// attemptError names a failure that only the attempt's own deadline caused.
func (t *attemptTransport) attemptError(ctx, actx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &attemptTimeoutError{timeout: t.timeout, cause: err}
	}
	return err
}

// attemptBody keeps the attempt's deadline running while the body is read, and releases the
// deadline's timer when the body is finished with.
type attemptBody struct {
	io.ReadCloser
	t         *attemptTransport
	ctx, actx context.Context
	cancel    context.CancelFunc
}

func (b *attemptBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.cancel()
	case err != nil:
		err = b.t.attemptError(b.ctx, b.actx, err)
	}
	return n, err
}

func (b *attemptBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// name is the operation's stable name for metrics; "other" for a request made outside a
// Directory call.
func (st *callState) name() string {
	if st == nil {
		return "other"
	}
	return st.op.String()
}
