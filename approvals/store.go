package approvals

import (
	"context"
	"time"
)

// Store keeps requests and sealed passes where every replica can see them.
//
// Implementations must make Update and TakeSecret atomic across processes: two replicas updating
// the same request never both succeed from the same starting state, and exactly one TakeSecret
// caller gets a secret.
//
// A store reached over a network must also survive a lost reply: its client may send a write
// again after the first attempt ran but its answer was lost (go-redis does, after a dropped
// connection or a read timeout). Every write therefore recognises its own earlier attempt and
// reports what that attempt did: an Update or Create finds the very record it wrote, a Claim or
// CompareAndSwap the value it set, a TakeSecret its own claim, even when another client has
// written the same key between the first attempt and the retry.
type Store interface {
	// Create stores a new request; ErrConflict if the ID exists.
	Create(ctx context.Context, r *Request) error
	// Get returns a copy of the request; ErrNotFound if there is none.
	Get(ctx context.Context, id string) (*Request, error)
	// Update reads the request, lets change modify a copy, and writes it back only if nobody wrote
	// in between (retrying change on a concurrent write). An error from change aborts the update
	// and is returned as is. It returns the request as written.
	Update(ctx context.Context, id string, change func(*Request) error) (*Request, error)
	// PutSecret stores a sealed pass for the request, gone after ttl.
	PutSecret(ctx context.Context, id string, sealed []byte, ttl time.Duration) error
	// TakeSecret claims the sealed pass for one reveal attempt: in one atomic step it checks that
	// the request is Revealing, owned by owner under token (its RevealToken), moves the pass to a
	// claim named by token, which lives for hold (and no longer than the pass would have), and
	// returns it. Taking again with the same token returns the same bytes, so a take that is sent
	// again after its reply was lost finds its own claim instead of nothing. ErrStaleReveal when
	// the request no longer names this attempt (a sweeper took it over, or it ended): a slow
	// owner must not take, or find its claim, once someone else may be showing the pass.
	// ErrNotFound when there is neither a pass nor a claim by token (it expired, or the store
	// lost it); ErrClaimedElsewhere when another token's claim holds it. A store configured to
	// wait for replicas also waits until they acknowledged the claim: if fewer did in time it
	// returns the sealed pass with ErrNotReplicated, since a failover could lose the claim and let the pass be shown
	// again, and the caller must put it back (ReturnSecret) instead of showing it.
	TakeSecret(ctx context.Context, id, owner, token string, hold time.Duration) ([]byte, error)
	// ReturnSecret puts a sealed pass back for ttl and drops token's claim on it, in one step:
	// the reveal that claimed it did not show it. Doing it twice is harmless. It is fenced as
	// TakeSecret is: when the request is no longer Revealing under owner and token (it ended, or
	// was taken over) it puts nothing back, drops token's claim, and returns ErrStaleReveal, so
	// no sealed copy outlives a request that ended or resurrects one a sweeper gave up.
	ReturnSecret(ctx context.Context, id, owner, token string, sealed []byte, ttl time.Duration) error
	// HasSecret reports whether a sealed pass is stored for the request and not claimed, without
	// touching it.
	HasSecret(ctx context.Context, id string) (bool, error)
	// HasSealedCopy reports whether any sealed copy of the request's pass is left: stored, or
	// under a reveal's claim. Without one nobody can ever see the pass through tapbot.
	HasSealedCopy(ctx context.Context, id string) (bool, error)
	// DeleteSecret removes a sealed pass and any claim on it; a missing one is not an error.
	DeleteSecret(ctx context.Context, id string) error

	// OpenRequests returns the IDs of requests that are not in a final state, so a sweeper can
	// expire them or finish what a stopped replica left.
	OpenRequests(ctx context.Context) ([]string, error)
	// AddWatch puts a request in the watch index: requests whose pass tapbot watches until the
	// person registers a sign-in method or the pass expires, which a revealed request (final,
	// out of the open index) still needs. RemoveWatch takes it out; Watched lists the index,
	// without requests whose record is gone.
	AddWatch(ctx context.Context, id string) error
	RemoveWatch(ctx context.Context, id string) error
	Watched(ctx context.Context) ([]string, error)
	// RecentByRequester returns copies of the requester's most recent requests, newest (last
	// created) first, at most limit of them; the store keeps the newest RecentKept per requester
	// for as long as it keeps the records (RecordRetention).
	RecentByRequester(ctx context.Context, requester string, limit int) ([]*Request, error)

	// Claim records key for ttl and reports whether this call was the first to do so: envelope
	// deduplication and the sweeper's turn use it. A call whose reply was lost and that is sent
	// again is still the first.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Touch sets key to live for ttl from now, whoever set it before (replica heartbeats).
	Touch(ctx context.Context, key string, ttl time.Duration) error
	// Alive reports whether key is set and not expired.
	Alive(ctx context.Context, key string) (bool, error)
	// Release removes a key set by Claim or Touch.
	Release(ctx context.Context, key string) error
	// CompareAndSwap sets key to next for ttl only if it now holds old ("" for a key that is not
	// set or has expired), and reports whether it did; next "" removes the key. Locks that name
	// their holder use it to take, renew, hand over and release only what they hold.
	//
	// It also succeeds (and sets the ttl again) when key already holds next: that is how a swap
	// sent again after its reply was lost recognises its own write. So next must name one write:
	// never a value two callers might both write (two replicas taking a lock with the same next
	// would both be told they hold it), nor one a caller writes again for a new purpose (a
	// replica taking "its" periodic turn while it still holds it would keep the turn for ever).
	// A request ID names one lock holder; a replica's turn adds a token new with each take.
	CompareAndSwap(ctx context.Context, key, old, next string, ttl time.Duration) (bool, error)
	// Value returns what Claim, Touch or CompareAndSwap left under key, "" when it is not set
	// or has expired. With CompareAndSwap it makes a small record any replica can read and
	// change atomically (the tenant watcher's cursor and external passes).
	Value(ctx context.Context, key string) (string, error)
	// Hit counts one event under key in a fixed window and returns the count so far and when the
	// window ends (rate limits).
	Hit(ctx context.Context, key string, window time.Duration) (int, time.Time, error)

	// AppendAudit adds an event to the audit trail, dropping events older than retention.
	AppendAudit(ctx context.Context, e Event, retention time.Duration) error
	// ReadAudit returns the trail's events since a time, oldest first.
	ReadAudit(ctx context.Context, since time.Time) ([]Event, error)
	// Recall returns what Remember kept under key, "" when nothing or expired; Remember keeps
	// value under key for ttl, and value "" forgets key. They hold small records that are not
	// requests (a person's Slack DM channel, a new hire's onboarding), apart from Claim's keys.
	Recall(ctx context.Context, key string) (string, error)
	Remember(ctx context.Context, key, value string, ttl time.Duration) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases connections.
	Close() error
}

// RecordRetention is how long a request record (never the pass) is kept after creation, so late
// clicks still get a precise answer.
const RecordRetention = 30 * 24 * time.Hour

// RecentKept is how many of a requester's requests a store indexes for /tap status.
const RecentKept = 50

// RecordMargin is how long a request record outlives its pass at least: a pass may last longer
// than RecordRetention (a start date ahead, a long lifetime), and while it works its request
// must still be there to expire, revoke or report it.
const RecordMargin = 7 * 24 * time.Hour

// KeepUntil is the earliest a store may drop r's record for the sake of its pass: RecordMargin
// after the pass stops working, or zero while no pass was issued. Stores keep a record
// RecordRetention after it was created or until KeepUntil, whichever is later, and never
// shorten that.
func (r *Request) KeepUntil() time.Time {
	if r.PassExpiresAt.IsZero() {
		return time.Time{}
	}
	return r.PassExpiresAt.Add(RecordMargin)
}
