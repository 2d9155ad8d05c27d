package slackrate

import (
	"log/slog"
	"slices"
	"sync"
	"time"
)

// lane is one bucket's queue on this replica. One waiter at a time holds the turn and asks the
// shared bucket for a token; the others wait in order, clicks first, then first come, first
// served. A holder that must sleep for a token gives the turn to any call that ranks before it,
// so a click never waits behind a queue of notifications.
type lane struct {
	key    string
	method string
	bucket Bucket
	// primary is the first bucket of its calls: Waiting counts a call in its primary lane only,
	// though a chat.postMessage also waits in the workspace's.
	primary bool
	refs    int // guarded by Client.mu

	mu        sync.Mutex
	seq       uint64
	waiting   []*waiter // in turn order, without the holder
	holder    *waiter
	asleep    bool      // the holder sleeps for a token
	sending   bool      // the holder of an ordered lane has its token and waits for Slack's answer
	wakeAt    time.Time // when the sleeping holder expects its token
	heldUntil time.Time // Slack's last Retry-After for this bucket, as this replica heard it

	// A queue formed (a call slept for a token) since the lane was last idle: the log says
	// when it forms and when it drains.
	congested time.Time
	delayed   int
	longest   time.Duration
	log       *slog.Logger
}

type waiter struct {
	prio    Priority
	seq     uint64
	ready   chan struct{} // closed when the waiter is given the turn
	preempt chan struct{} // told, while it holds the turn and sleeps, that a call ranks before it
}

func (w *waiter) turn() <-chan struct{} { return w.ready }

func before(a, b *waiter) bool {
	if a.prio != b.prio {
		return a.prio < b.prio
	}
	return a.seq < b.seq
}

// enqueue puts a call in line; *seq keeps its place across a resend after Retry-After.
func (l *lane) enqueue(prio Priority, seq *uint64) *waiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *seq == 0 {
		l.seq++
		*seq = l.seq
	}
	w := &waiter{prio: prio, seq: *seq, ready: make(chan struct{}), preempt: make(chan struct{}, 1)}
	l.insertLocked(w)
	switch {
	case l.holder == nil:
		l.grantLocked()
	case l.asleep && before(w, l.holder):
		select {
		case l.holder.preempt <- struct{}{}:
		default:
		}
	}
	return w
}

func (l *lane) insertLocked(w *waiter) {
	i, _ := slices.BinarySearchFunc(l.waiting, w, func(a, b *waiter) int {
		if before(a, b) {
			return -1
		}
		return 1
	})
	l.waiting = slices.Insert(l.waiting, i, w)
}

// grantLocked gives the turn to the first waiter, or marks the lane idle.
func (l *lane) grantLocked() {
	l.asleep, l.sending = false, false
	if len(l.waiting) == 0 {
		l.holder = nil
		if !l.congested.IsZero() && l.log != nil {
			l.log.Info("Slack call queue drained", "bucket", l.key, "calls_delayed", l.delayed,
				"longest_wait", l.longest.Round(time.Millisecond).String(), "queued_for", time.Since(l.congested).Round(time.Millisecond).String())
		}
		l.congested, l.delayed, l.longest = time.Time{}, 0, 0
		return
	}
	w := l.waiting[0]
	l.waiting = l.waiting[1:]
	l.holder = w
	close(w.ready)
}

// ahead counts the calls before w (the holder and the waiters that rank before it) and
// estimates w's wait: the sleeping holder's wait, then one bucket interval per call.
func (l *lane) ahead(w *waiter) (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == w {
		return 0, 0
	}
	n := 0
	var wait time.Duration
	if l.holder != nil {
		n++
		if l.asleep {
			wait = time.Until(l.wakeAt)
		}
	}
	for _, o := range l.waiting {
		if o == w {
			break
		}
		n++
	}
	return n, max(wait, 0) + time.Duration(n)*l.bucket.Every
}

// queued counts the calls waiting in the lane, the holder included unless it is already
// sending.
func (l *lane) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.waiting)
	if l.holder != nil && !l.sending {
		n++
	}
	return n
}

// busy reports whether the lane has a holder or waiters, sending or not.
func (l *lane) busy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder != nil || len(l.waiting) > 0
}

// send records that the holder w has its token and now waits for Slack's answer.
func (l *lane) send(w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == w {
		l.sending = true
	}
}

// sleeping records that the holder w waits d for a token, and logs a queue that forms.
func (l *lane) sleeping(w *waiter, d time.Duration, log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder != w {
		return
	}
	l.asleep = true
	l.wakeAt = time.Now().Add(d)
	l.delayed++
	l.longest = max(l.longest, d)
	if l.congested.IsZero() && (d >= time.Second || len(l.waiting) > 0) {
		l.congested = time.Now()
		l.log = log
		log.Info("Slack calls queued behind Slack's rate limit", "bucket", l.key, "queued", len(l.waiting)+1,
			"wait", d.Round(time.Millisecond).String(), "every", l.bucket.Every.String(), "burst", l.bucket.Burst)
	}
	// A preemption that arrived before the holder fell asleep must not be lost.
	for _, o := range l.waiting {
		if before(o, w) {
			select {
			case w.preempt <- struct{}{}:
			default:
			}
			break
		}
	}
}

// release gives the turn back after w took its token (or gave up).
func (l *lane) release(w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == w {
		l.grantLocked()
	}
}

// leave takes w out of line, whether it holds the turn or still waits.
func (l *lane) leave(w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == w {
		l.grantLocked()
		return
	}
	if i := slices.Index(l.waiting, w); i >= 0 {
		l.waiting = slices.Delete(l.waiting, i, i+1)
	}
}

// yield hands the turn to the call that ranks first and puts w back in line at its place.
func (l *lane) yield(w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder != w {
		return
	}
	w.ready = make(chan struct{})
	select {
	case <-w.preempt:
	default:
	}
	l.insertLocked(w)
	l.grantLocked()
}

// holdFor keeps the lane's calls back for d (Slack's Retry-After).
func (l *lane) holdFor(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.heldUntil) {
		l.heldUntil = until
	}
}

// held is how long the lane's calls are still held back, 0 when they are not.
func (l *lane) held() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(time.Until(l.heldUntil), 0)
}
