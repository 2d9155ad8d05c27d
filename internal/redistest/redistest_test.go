package redistest

import (
	"net"
	"strings"
	"testing"
)

// TestStartTCPRetriesTakenPort hands StartTCP a port held by another redis-server, then one held
// by an ordinary listener: the new server must notice that it is not the one answering, start
// again on a fresh port, and come up there.
func TestStartTCPRetriesTakenPort(t *testing.T) {
	first := StartTCP(t)
	_, firstPort, _ := net.SplitHostPort(first.Addr())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, listenerPort, _ := net.SplitHostPort(l.Addr().String())

	taken := []string{firstPort, listenerPort}
	var handed []string
	pickPort = func() (string, error) {
		if len(handed) < len(taken) {
			handed = append(handed, taken[len(handed)])
			return handed[len(handed)-1], nil
		}
		return freePort()
	}
	t.Cleanup(func() { pickPort = freePort })

	second := StartTCP(t)
	if len(handed) != len(taken) {
		t.Fatalf("StartTCP tried only ports %v of the taken %v", handed, taken)
	}
	for _, p := range taken {
		if strings.HasSuffix(second.Addr(), ":"+p) {
			t.Fatalf("second server claims taken port %s", p)
		}
	}
	c, err := dial("tcp", second.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if v, err := c.do("PING"); err != nil || v != "PONG" {
		t.Fatalf("PING = %v, %v", v, err)
	}
}

// TestTCPRestartKeepsPort checks that Restart brings a TCP server back where clients expect it.
func TestTCPRestartKeepsPort(t *testing.T) {
	s := StartTCP(t)
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") || s.URL() != "redis://"+addr {
		t.Fatalf("Addr = %q, URL = %q", addr, s.URL())
	}
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr())
	}
	c, err := dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if v, err := c.do("PING"); err != nil || v != "PONG" {
		t.Fatalf("PING after Restart = %v, %v", v, err)
	}
}
