// Package redistest starts a real redis-server for tests. It never skips: a machine without
// redis-server fails the test, because a skipped store test hides a missing dependency.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is a redis-server process listening on a unix socket in the test's temp dir.
type Server struct {
	tb     testing.TB
	dir    string
	socket string
	cmd    *exec.Cmd
}

// Start launches redis-server and waits until it accepts connections; it is stopped when the
// test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (apt-get install -y redis-server); the store tests need a real one: %v", err)
	}
	dir, err := os.MkdirTemp("", "tapbot-redis-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &Server{tb: tb, dir: dir, socket: filepath.Join(dir, "redis.sock")}
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

// URL is the REDIS_URL for this server.
func (s *Server) URL() string { return "unix://" + s.socket }

// Socket is the unix socket path, for clients that take an address.
func (s *Server) Socket() string { return s.socket }

func (s *Server) start() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server",
		"--port", "0", "--unixsocket", s.socket, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		s.tb.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if err := ping(s.socket); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			s.tb.Fatalf("redis-server did not start on %s within 10s", s.socket)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func ping(socket string) error {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}

// Stop kills the server, as an outage would.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
	_ = os.Remove(s.socket)
}

// Restart starts the server again on the same socket after Stop; its data is gone.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}
