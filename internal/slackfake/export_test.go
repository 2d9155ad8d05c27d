package slackfake

import "time"

// SetRateLimitClock replaces the real clock the rate limiter reads, so tests can refill buckets
// and end ThrottleFor windows deterministically. Call it before the first Web API call.
func SetRateLimitClock(s *Server, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rl.now = now
}
