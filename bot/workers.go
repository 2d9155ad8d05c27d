package bot

import (
	"context"
	"fmt"
	"sync"
)

// workerPool bounds the handlers doing slow work at once (maxWorkers). A decision (Approve or
// Deny, someone waiting on their click) gets the next free slot before a new request does: in
// a burst, new requests' checks wait on Slack's limits for users.info and would otherwise hold
// every slot while the approvals that turn requests into passes queue behind them.
type workerPool struct {
	mu      sync.Mutex
	free    int
	waiting [2][]chan struct{} // decisions, then requests; each in arrival order
}

const (
	decisionWork = 0
	requestWork  = 1
)

func newWorkerPool(n int) *workerPool { return &workerPool{free: n} }

// take waits for a slot; it fails only when ctx ends first, and then nothing was done.
func (p *workerPool) take(ctx context.Context, kind int) (release func(), err error) {
	p.mu.Lock()
	if p.free > 0 {
		p.free--
		p.mu.Unlock()
		return p.releaseOnce(), nil
	}
	ready := make(chan struct{})
	p.waiting[kind] = append(p.waiting[kind], ready)
	p.mu.Unlock()
	select {
	case <-ready:
		return p.releaseOnce(), nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, w := range p.waiting[kind] {
			if w == ready {
				p.waiting[kind] = append(p.waiting[kind][:i], p.waiting[kind][i+1:]...)
				return nil, fmt.Errorf("wait for a free worker: %w", ctx.Err())
			}
		}
		// Handed a slot just as ctx ended: give it on.
		p.releaseLocked()
		return nil, fmt.Errorf("wait for a free worker: %w", ctx.Err())
	}
}

// releaseOnce returns a release that gives the slot back the first time it is called.
func (p *workerPool) releaseOnce() func() {
	var once sync.Once
	return func() { once.Do(p.release) }
}

func (p *workerPool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked()
}

// releaseLocked hands the slot to the first waiting decision, else request, else frees it.
func (p *workerPool) releaseLocked() {
	for k := range p.waiting {
		if len(p.waiting[k]) > 0 {
			next := p.waiting[k][0]
			p.waiting[k] = p.waiting[k][1:]
			close(next)
			return
		}
	}
	p.free++
}
