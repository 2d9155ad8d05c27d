package slackrate

// Lanes counts the lanes a Client keeps, for the test that idle ones are forgotten.
func (c *Client) Lanes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lanes)
}
