package approvals

import (
	"context"
	"sync"
	"time"
)

// policyTTL is how long the request form trusts the tenant's policy before reading it again:
// the form must open within Slack's three-second trigger, and the policy rarely changes (Submit
// always checks a request against a fresh read).
const policyTTL = 5 * time.Minute

type policyCache struct {
	mu   sync.Mutex
	p    PassPolicy
	read time.Time
}

// FormPolicy returns the tenant's Temporary Access Pass policy for building the request form,
// from a cache of at most policyTTL.
func (s *Service) FormPolicy(ctx context.Context) (PassPolicy, error) {
	c := &s.policyCache
	c.mu.Lock()
	if !c.read.IsZero() && s.now().Sub(c.read) < policyTTL {
		p := c.p
		c.mu.Unlock()
		return p, nil
	}
	c.mu.Unlock()
	p, err := s.dir.PassPolicy(ctx)
	if err != nil {
		return PassPolicy{}, err
	}
	c.mu.Lock()
	c.p, c.read = p, s.now()
	c.mu.Unlock()
	return p, nil
}

// LifetimeRange is what the request form may offer: lifetimes from the tenant's minimum to the
// lower of its maximum and TAP_MAX_LIFETIME, and a default inside that range (TAP_DEFAULT_LIFETIME
// when it fits, else the tenant's default, else the minimum). It is an *Error when the tenant has
// turned passes off or nothing fits, which only an administrator can fix.
func (s *Service) LifetimeRange(p PassPolicy) (lo, hi, def time.Duration, err error) {
	if !p.Enabled {
		return 0, 0, 0, Errorf(Invalid, "Temporary Access Pass is turned off in your Entra ID tenant. An Entra admin must enable it under Authentication methods before tapbot can make passes.")
	}
	lo, hi = time.Minute, s.cfg.MaxLifetime
	if p.MinLifetime > 0 {
		lo = p.MinLifetime
	}
	if p.MaxLifetime > 0 && p.MaxLifetime < hi {
		hi = p.MaxLifetime
	}
	if lo > hi {
		return 0, 0, 0, Errorf(Invalid, "Your tenant's Temporary Access Pass policy asks for lifetimes of at least %s, but tapbot may make passes of at most %s (TAP_MAX_LIFETIME). Ask your tapbot administrator to raise TAP_MAX_LIFETIME or an Entra admin to lower the policy's minimum.",
			FormatDuration(lo), FormatDuration(hi))
	}
	for _, d := range []time.Duration{s.cfg.DefaultLifetime, p.DefaultLifetime, lo} {
		if d >= lo && d <= hi {
			return lo, hi, d, nil
		}
	}
	return lo, hi, lo, nil
}
