package approvals_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// endingStore is a real embedded store on which the request ends (a revoke, say) while a reveal
// holds its pass: right after the take.
type endingStore struct {
	*approvals.MemoryStore
	end approvals.State
}

func (e *endingStore) TakeSecret(ctx context.Context, id, owner, token string, hold time.Duration) ([]byte, error) {
	b, err := e.MemoryStore.TakeSecret(ctx, id, owner, token, hold)
	if err == nil {
		_, _ = e.MemoryStore.Update(ctx, id, func(r *approvals.Request) error {
			r.State, r.Owner, r.RevealToken = e.end, "", ""
			return nil
		})
	}
	return b, err
}

// TestNoPassPutBackOntoAnEndedRequest: a pass this replica cannot open goes back sealed for the
// next click, but the request was revoked (or expired, failed, cancelled) meanwhile: nothing may
// be put back, or a sealed copy would linger on a request that no longer offers it.
func TestNoPassPutBackOntoAnEndedRequest(t *testing.T) {
	for _, end := range []approvals.State{approvals.Revoked, approvals.Expired, approvals.Failed, approvals.Cancelled} {
		t.Run(string(end), func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			ctx := context.Background()
			r := h.submit(t)
			if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
				t.Fatal(err)
			}
			other := approvals.NewRandomSealer() // a key this replica lacks
			if err := h.store.PutSecret(ctx, r.ID, other.Seal(r.ID, []byte(passCode)), time.Hour); err != nil {
				t.Fatal(err)
			}
			store := &endingStore{MemoryStore: h.store, end: end}
			svc := approvals.NewService(h.svc.Config(), store, h.dir, h.people, h.sealer, approvals.WithClock(h.clock))
			got, code, err := svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
			if code != "" || err == nil {
				t.Fatalf("Reveal = %q, %v; want nothing shown", code, err)
			}
			if got.State != end {
				t.Fatalf("the request is %s, want it left %s", got.State, end)
			}
			if ok, _ := h.store.HasSealedCopy(ctx, r.ID); ok {
				t.Fatalf("a sealed copy was put back onto a %s request", end)
			}
		})
	}
}

// TestUnopenablePassEndsHonestly: no replica Ada's clicks reach can unseal her pass, so each
// click puts it back sealed; once the pass's time is up the sweeper drops the sealed copy and
// ends the request saying so, not "expired before it was revealed" as if she never clicked.
func TestUnopenablePassEndsHonestly(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	issued, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
	if err != nil {
		t.Fatal(err)
	}
	other := approvals.NewRandomSealer() // the key it was sealed with, which no replica here has
	if err := h.store.PutSecret(ctx, r.ID, other.Seal(r.ID, []byte(passCode)), time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); code != "" || approvals.ErrorCode(err) != approvals.Unavailable {
			t.Fatalf("Reveal = %q, %v; want temporarily unavailable", code, err)
		}
	}
	h.advance(issued.PassExpiresAt.Sub(h.clock()) + time.Second)
	out, err := h.svc.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].State != approvals.Failed || !strings.Contains(out[0].Failure, "unseal") {
		t.Fatalf("swept %v; want the request failed, saying the pass could not be unsealed", states(out))
	}
	if ok, _ := h.store.HasSealedCopy(ctx, r.ID); ok {
		t.Fatal("the unopenable sealed pass is still in the store")
	}
}
