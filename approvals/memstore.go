package approvals

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is the embedded store for a single replica: everything lives in this process and
// is lost when it exits. Its semantics match the Redis store's, checked by the same contract
// tests.
type MemoryStore struct {
	mu       sync.Mutex
	now      func() time.Time
	requests map[string]memRecord
	secrets  map[string]memSecret
	claims   map[string]memClaim // sealed passes a reveal has taken, by request ID
	keys     map[string]memKey   // Claim/Touch/CompareAndSwap keys
	memos    map[string]memKey   // Remember/Recall, apart: they live for months, keys for minutes
	hits     map[string]memHits
	audit    []memEvent
	watched  map[string]bool // the watch index; see watchstore.go
	// byRequester lists each requester's request IDs, oldest first, at most RecentKept.
	byRequester map[string][]string
}

type memEvent struct {
	e  Event
	at time.Time // when it was appended, as a Redis stream ID records it
}

type memKey struct {
	value   string
	expires time.Time
}

type memHits struct {
	n   int
	end time.Time
}

type memRecord struct {
	req     *Request
	expires time.Time
}

type memSecret struct {
	sealed  []byte
	expires time.Time
}

type memClaim struct {
	token   string
	sealed  []byte
	expires time.Time
}

// NewMemoryStore returns an empty embedded store. now may be nil for the wall clock.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, requests: map[string]memRecord{}, secrets: map[string]memSecret{}, claims: map[string]memClaim{}, keys: map[string]memKey{}, memos: map[string]memKey{}, hits: map[string]memHits{},
		byRequester: map[string][]string{}}
}

// Create implements Store.
func (m *MemoryStore) Create(ctx context.Context, r *Request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.liveRecord(r.ID); ok {
		return ErrConflict
	}
	m.requests[r.ID] = memRecord{req: r.Clone(), expires: later(m.now().Add(RecordRetention), r.KeepUntil())}
	ids := append(m.byRequester[r.Requester], r.ID)
	if len(ids) > RecentKept {
		ids = append([]string(nil), ids[len(ids)-RecentKept:]...)
	}
	m.byRequester[r.Requester] = ids
	return nil
}

// RecentByRequester implements Store.
func (m *MemoryStore) RecentByRequester(ctx context.Context, requester string, limit int) ([]*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := m.byRequester[requester]
	var out []*Request
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		if rec, ok := m.liveRecord(ids[i]); ok {
			out = append(out, rec.req.Clone())
		}
	}
	return out, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// RecordExpiry reports when the request's record will be dropped, for the store contract.
func (m *MemoryStore) RecordExpiry(ctx context.Context, id string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.liveRecord(id)
	if !ok {
		return time.Time{}, ErrNotFound
	}
	return rec.expires, nil
}

// liveRecord returns the record unless it has expired; m.mu must be held.
func (m *MemoryStore) liveRecord(id string) (memRecord, bool) {
	rec, ok := m.requests[id]
	if ok && !m.now().Before(rec.expires) {
		delete(m.requests, id)
		return memRecord{}, false
	}
	return rec, ok
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, id string) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.liveRecord(id)
	if !ok {
		return nil, ErrNotFound
	}
	return rec.req.Clone(), nil
}

// Update implements Store. The lock makes it trivially atomic.
func (m *MemoryStore) Update(ctx context.Context, id string, change func(*Request) error) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.liveRecord(id)
	if !ok {
		return nil, ErrNotFound
	}
	next := rec.req.Clone()
	if err := change(next); err != nil {
		return nil, err
	}
	rec.req = next.Clone()
	rec.expires = later(rec.expires, next.KeepUntil())
	m.requests[id] = rec
	return next, nil
}

// PutSecret implements Store.
func (m *MemoryStore) PutSecret(ctx context.Context, id string, sealed []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets[id] = memSecret{sealed: append([]byte(nil), sealed...), expires: m.now().Add(ttl)}
	return nil
}

// TakeSecret implements Store. Nothing here loses a reply, but the claims behave as the Redis
// store's do, so the service sees one behaviour.
func (m *MemoryStore) TakeSecret(ctx context.Context, id, owner, token string, hold time.Duration) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.revealsLocked(id, owner, token) {
		return nil, ErrStaleReveal
	}
	now := m.now()
	c, claimed := m.claims[id]
	claimed = claimed && now.Before(c.expires)
	if claimed && c.token == token {
		return append([]byte(nil), c.sealed...), nil
	}
	s, ok := m.secrets[id]
	delete(m.secrets, id)
	if !ok || !now.Before(s.expires) {
		if claimed {
			return nil, ErrClaimedElsewhere
		}
		return nil, ErrNotFound
	}
	m.claims[id] = memClaim{token: token, sealed: s.sealed, expires: now.Add(min(hold, s.expires.Sub(now)))}
	return append([]byte(nil), s.sealed...), nil
}

// revealsLocked reports whether request id is Revealing, owned by owner under token; m.mu must
// be held.
func (m *MemoryStore) revealsLocked(id, owner, token string) bool {
	rec, ok := m.liveRecord(id)
	return ok && rec.req.State == Revealing && rec.req.Owner == owner && rec.req.RevealToken == token
}

// ReturnSecret implements Store.
func (m *MemoryStore) ReturnSecret(ctx context.Context, id, owner, token string, sealed []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fenced := m.revealsLocked(id, owner, token)
	if fenced {
		m.secrets[id] = memSecret{sealed: append([]byte(nil), sealed...), expires: m.now().Add(ttl)}
	}
	if c, ok := m.claims[id]; ok && c.token == token {
		delete(m.claims, id)
	}
	if !fenced {
		return ErrStaleReveal
	}
	return nil
}

// HasSecret implements Store.
func (m *MemoryStore) HasSecret(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.secrets[id]
	return ok && m.now().Before(s.expires), nil
}

// HasSealedCopy implements Store.
func (m *MemoryStore) HasSealedCopy(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s, stored := m.secrets[id]
	c, claimed := m.claims[id]
	return stored && now.Before(s.expires) || claimed && now.Before(c.expires), nil
}

// DeleteSecret implements Store.
func (m *MemoryStore) DeleteSecret(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.secrets, id)
	delete(m.claims, id)
	return nil
}

// OpenRequests implements Store.
func (m *MemoryStore) OpenRequests(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.requests {
		if rec, ok := m.liveRecord(id); ok && !rec.req.State.Final() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Claim implements Store.
func (m *MemoryStore) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.liveKey(key); ok {
		return false, nil
	}
	m.setKey(key, "1", ttl)
	return true, nil
}

// liveKey returns key's value unless it is unset or expired; m.mu must be held.
func (m *MemoryStore) liveKey(key string) (string, bool) {
	k, ok := m.keys[key]
	if !ok || !m.now().Before(k.expires) {
		return "", false
	}
	return k.value, true
}

// setKey sets key for ttl; m.mu must be held.
func (m *MemoryStore) setKey(key, value string, ttl time.Duration) {
	now := m.now()
	if len(m.keys) >= 4096 {
		// Envelope IDs pile up; drop the expired ones before they grow without bound.
		for k, v := range m.keys {
			if !now.Before(v.expires) {
				delete(m.keys, k)
			}
		}
	}
	m.keys[key] = memKey{value: value, expires: now.Add(ttl)}
}

// Value implements Store.
func (m *MemoryStore) Value(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, _ := m.liveKey(key)
	return v, nil
}

// CompareAndSwap implements Store.
func (m *MemoryStore) CompareAndSwap(ctx context.Context, key, old, next string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, _ := m.liveKey(key); cur != old && cur != next {
		return false, nil
	}
	if next == "" {
		delete(m.keys, key)
	} else {
		m.setKey(key, next, ttl)
	}
	return true, nil
}

// Touch implements Store.
func (m *MemoryStore) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setKey(key, "1", ttl)
	return nil
}

// Alive implements Store.
func (m *MemoryStore) Alive(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.liveKey(key)
	return ok, nil
}

// Release implements Store.
func (m *MemoryStore) Release(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, key)
	return nil
}

// Hit implements Store.
func (m *MemoryStore) Hit(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	h := m.hits[key]
	if !now.Before(h.end) {
		h = memHits{end: now.Add(window)}
	}
	h.n++
	m.hits[key] = h
	return h.n, h.end, nil
}

// AppendAudit implements Store. The embedded store keeps the trail in memory only; the log is
// the lasting copy.
func (m *MemoryStore) AppendAudit(ctx context.Context, e Event, retention time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	cut := now.Add(-retention)
	kept := m.audit[:0]
	for _, old := range m.audit {
		if !old.at.Before(cut) {
			kept = append(kept, old)
		}
	}
	m.audit = append(kept, memEvent{e, now})
	return nil
}

// ReadAudit implements Store.
func (m *MemoryStore) ReadAudit(ctx context.Context, since time.Time) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, me := range m.audit {
		if !me.at.Before(since) {
			out = append(out, me.e)
		}
	}
	return out, nil
}

// Ping implements Store.
func (m *MemoryStore) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements Store.
func (m *MemoryStore) Close() error { return nil }

// Recall returns what Remember kept under key, "" when nothing or expired. It and Remember
// keep small facts the adapters learn from outside (a person's Slack DM channel) apart from
// the request keys.
func (m *MemoryStore) Recall(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.memos[key]; ok && m.now().Before(v.expires) {
		return v.value, nil
	}
	return "", nil
}

// Remember keeps value under key for ttl; value "" forgets key.
func (m *MemoryStore) Remember(ctx context.Context, key, value string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if value == "" {
		delete(m.memos, key)
		return nil
	}
	now := m.now()
	if len(m.memos) >= 1<<16 {
		for k, v := range m.memos {
			if !now.Before(v.expires) {
				delete(m.memos, k)
			}
		}
	}
	m.memos[key] = memKey{value: value, expires: now.Add(ttl)}
	return nil
}
