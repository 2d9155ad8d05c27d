package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// Bench measures a store's operations on the request path. Both stores run it, so BENCHMARKS.md
// can set the Redis store's figures (round trips) beside the embedded store's (the in-process
// floor) for exactly the same work.
func Bench(b *testing.B, s approvals.Store) {
	ctx := context.Background()
	newRequest := func() *approvals.Request {
		now := time.Now()
		return &approvals.Request{ID: approvals.NewID(), Requester: "UMANAGER", Recipient: "UADA",
			Target:   approvals.Target{SlackID: "UADA", UPN: "ada@example.com", DisplayName: "Ada Lovelace"},
			Lifetime: time.Hour, UsableOnce: true, Reason: "new laptop", State: approvals.Pending,
			CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	}
	b.Run("Create", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Create(ctx, newRequest()); err != nil {
				b.Fatal(err)
			}
		}
	})
	r := newRequest()
	if err := s.Create(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.Run("Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Update", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n++
			if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) error {
				r.ApprovalMessage = approvals.MessageRef{Channel: "CAPPROVALS", TS: time.Unix(int64(n), 0).String()}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	sealed := make([]byte, 60) // a sealed 8-character pass: nonce, ciphertext and tag
	b.Run("PutSecret+TakeSecret", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.PutSecret(ctx, r.ID, sealed, time.Hour); err != nil {
				b.Fatal(err)
			}
			token := approvals.NewID()
			revealing(b, s, r.ID, testOwner, token)
			if _, err := s.TakeSecret(ctx, r.ID, testOwner, token, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Updates from many goroutines on different requests: what a burst of approvals does.
	ids := make([]string, 64)
	for i := range ids {
		r := newRequest()
		if err := s.Create(ctx, r); err != nil {
			b.Fatal(err)
		}
		ids[i] = r.ID
	}
	b.Run("Update/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := s.Update(ctx, ids[i%len(ids)], func(r *approvals.Request) error {
					r.Owner = "replica"
					return nil
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
