package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// redisServer is a redis-server process of tapload's own on 127.0.0.1. tapload has its own
// launcher rather than internal/redistest because that one needs a testing.TB and a unix socket,
// and the bot must reach Redis the way a user configures it: a redis:// URL over TCP.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	dir  string
	logs *tailBuffer
	done chan struct{}
}

// startRedis launches redis-server without persistence on a free loopback port and waits until it
// answers PING. A port another process grabs between our probe and redis-server's bind makes
// redis-server exit, so a few ports are tried.
func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed (apt-get install -y redis-server); tapload measures a real one: %w", err)
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir,
			logs: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
		s.cmd = exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
		s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
		s.cmd.SysProcAttr = dieWithParent()
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if err := s.waitReady(ctx); err != nil {
			s.stop()
			lastErr = err
			continue
		}
		return s, nil
	}
	return nil, lastErr
}

func (s *redisServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		c, err := dialRedis(ctx, s.addr)
		if err == nil {
			_, err = c.do("PING")
			c.close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited at start: %s", strings.TrimSpace(s.logs.String()))
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s did not answer within 10s: %w", s.addr, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// url is the REDIS_URL the bot gets.
func (s *redisServer) url() string { return "redis://" + s.addr + "/0" }

// version asks the server for its version, for the report.
func (s *redisServer) version(ctx context.Context) string {
	c, err := dialRedis(ctx, s.addr)
	if err != nil {
		return "unknown"
	}
	defer c.close()
	info, err := c.do("INFO", "server")
	if err != nil {
		return "unknown"
	}
	return infoField(fmt.Sprint(info), "redis_version")
}

func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// respConn is the smallest RESP2 client tapload needs: CONFIG RESETSTAT, INFO, ECHO and MONITOR.
// A hand-written one keeps tapload's own traffic easy to tell apart (one connection, known
// address) from the bot's go-redis pool.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRedis(ctx context.Context, addr string) (*respConn, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial redis %s: %w", addr, err)
	}
	return &respConn{c: c, r: bufio.NewReader(c)}, nil
}

func (c *respConn) close() { _ = c.c.Close() }

// localAddr is how redis-server names this connection in MONITOR output.
func (c *respConn) localAddr() string { return c.c.LocalAddr().String() }

// do sends one command and reads its reply: a string, an int64, nil or a []any.
func (c *respConn) do(args ...string) (any, error) {
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.c.SetDeadline(time.Time{}) }()
	if err := c.send(args...); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *respConn) send(args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.c.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("redis write: %w", err)
	}
	return nil
}

func (c *respConn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("redis read: %w", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis read: empty line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, fmt.Errorf("redis: %s", line[1:])
	case ':':
		n, err := strconv.ParseInt(line[1:], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis read integer %q: %w", line, err)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("redis read bulk length %q: %w", line, err)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, fmt.Errorf("redis read bulk: %w", err)
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("redis read array length %q: %w", line, err)
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.read(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis read: unexpected reply %q", line)
}

// infoField returns one "name:value" field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// commandStats parses INFO commandstats into calls by command name ("set", "config|resetstat").
func commandStats(info string) (map[string]int, error) {
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("commandstats line %q", line)
		}
		for _, f := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("commandstats line %q: %w", line, err)
				}
				out[name] = n
			}
		}
	}
	return out, nil
}

// monitorLine is one command redis-server executed, as MONITOR reports it.
type monitorLine struct {
	client string   // "127.0.0.1:PORT", or "lua" for a command a script ran
	args   []string // command name (lower case) first
}

// monitor streams MONITOR output until stopped. It is used only around one request lifecycle,
// to tell the bot's own commands from its heartbeat and sweeper and from tapload's.
type monitor struct {
	conn *respConn
	mu   sync.Mutex
	seen []monitorLine
	done chan struct{}
	err  error
}

func startMonitor(ctx context.Context, addr string) (*monitor, error) {
	c, err := dialRedis(ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := c.send("MONITOR"); err != nil {
		c.close()
		return nil, err
	}
	if r, err := c.read(); err != nil || r != "OK" {
		c.close()
		return nil, fmt.Errorf("redis MONITOR answered %v: %w", r, err)
	}
	m := &monitor{conn: c, done: make(chan struct{})}
	go m.loop()
	return m, nil
}

func (m *monitor) loop() {
	defer close(m.done)
	for {
		r, err := m.conn.read()
		if err != nil {
			m.mu.Lock()
			m.err = err
			m.mu.Unlock()
			return
		}
		s, ok := r.(string)
		if !ok {
			continue
		}
		if l, ok := parseMonitor(s); ok {
			m.mu.Lock()
			m.seen = append(m.seen, l)
			m.mu.Unlock()
		}
	}
}

// lines returns what was seen so far.
func (m *monitor) lines() []monitorLine {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]monitorLine(nil), m.seen...)
}

func (m *monitor) stop() {
	m.conn.close()
	<-m.done
}

// parseMonitor reads `1700000000.123456 [0 127.0.0.1:5000] "SET" "k" "v"`.
func parseMonitor(s string) (monitorLine, bool) {
	open := strings.IndexByte(s, '[')
	end := strings.IndexByte(s, ']')
	if open < 0 || end < open {
		return monitorLine{}, false
	}
	src := strings.Fields(s[open+1 : end])
	if len(src) != 2 {
		return monitorLine{}, false
	}
	var args []string
	rest := s[end+1:]
	for {
		i := strings.IndexByte(rest, '"')
		if i < 0 {
			break
		}
		rest = rest[i:]
		// strconv.QuotedPrefix understands the escapes redis uses (\" \\ \xNN \n ...).
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			// Redis writes bytes Go would not accept raw; keep the raw token, it is only counted.
			j := strings.IndexByte(rest[1:], '"')
			if j < 0 {
				break
			}
			args = append(args, rest[1:j+1])
			rest = rest[j+2:]
			continue
		}
		u, _ := strconv.Unquote(q)
		args = append(args, u)
		rest = rest[len(q):]
	}
	if len(args) == 0 {
		return monitorLine{}, false
	}
	args[0] = strings.ToLower(args[0])
	return monitorLine{client: src[1], args: args}, true
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written, for error messages about a process that stopped.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
