package slackfake

import (
	"net"
	"net/http"
)

// Faults Slack's side of a network shows now and then, for tests of what a client does when it
// cannot tell what Slack did.

// apiFault is one armed fault for a Web API method.
type apiFault struct {
	code  string // answer ok:false with this code instead of running the call
	reset bool   // run the call, then close the connection without an answer
	left  int
}

// FailNext makes the next times calls of method answer ok:false with code, doing nothing, as
// Slack does when it refuses a call (not_found for a modal the person already closed, say). It
// is Slack's answer, not a mistake of the client's, so it is not a violation.
func (s *Server) FailNext(method, code string, times int) {
	s.addFault(method, &apiFault{code: code, left: times})
}

// ResetAfterApplying makes the next times calls of method that succeed do their work and then
// close the connection without an answer, as a connection reset or a timeout after Slack applied
// a call does: the client sees an error although Slack did what it asked. Such calls are in
// CallLog with Reset set.
func (s *Server) ResetAfterApplying(method string, times int) {
	s.addFault(method, &apiFault{reset: true, left: times})
}

func (s *Server) addFault(method string, f *apiFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults == nil {
		s.faults = map[string][]*apiFault{}
	}
	s.faults[method] = append(s.faults[method], f)
}

// takeFaultLocked returns the first armed fault of method that reset says which kind of, and
// counts it used.
func (s *Server) takeFaultLocked(method string, reset bool) *apiFault {
	for _, f := range s.faults[method] {
		if f.left > 0 && f.reset == reset {
			f.left--
			return f
		}
	}
	return nil
}

// resetConnection closes the connection of w's request without writing an answer, with a TCP
// reset where the connection allows it.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("slackfake: the HTTP server does not let a handler take over its connection")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // an RST, not a clean close: "connection reset by peer"
	}
	_ = conn.Close()
}

// RouteTo delivers every envelope from now on over one Socket Mode connection: the conn-th one
// opened (TotalConnections counts them), waiting for it while it is not open. Slack picks a
// connection for each envelope as it likes; a test of what one replica does with a click needs
// to pick it. 0 goes back to spreading envelopes over every connection.
func (s *Server) RouteTo(conn int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.route = conn
	s.notifyLocked()
}
