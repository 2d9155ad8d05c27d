package graph

// Queued is how many callers are waiting for a free slot, so a test can cancel one that is
// certainly queued instead of guessing with a sleep.
func (c *Client) Queued() int { return int(c.attempts.queued.Load()) }

// Admitting is how many calls are waiting for admission, before they enter the SDK.
func (c *Client) Admitting() int { return int(c.admitting.Load()) }
