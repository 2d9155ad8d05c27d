// Package redistest starts a real redis-server for tests. It never skips: a machine without
// redis-server fails the test, because a skipped store test hides a missing dependency.
//
// Besides the plain server on a unix socket it can start a server on TCP, a replica of one, a
// master watched by a Sentinel, and a one-node Redis Cluster, so the Sentinel and Cluster code
// paths run against the real protocols rather than mocks. A Proxy in front of a server loses
// replies and commands on purpose, as a network does. Everything listens on 127.0.0.1 only.
package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long any process may take to become ready. It is generous because a
// loaded CI machine is slow, and it costs nothing when things work: readiness is polled.
const startTimeout = 10 * time.Second

// portAttempts is how often a TCP process is started again on a new port when the one it was
// given got taken between choosing it and binding it.
const portAttempts = 5

// SentinelMaster is the master name StartSentinel monitors, as it appears in its URL.
const SentinelMaster = "mymaster"

// Server is a redis-server process listening on a unix socket in the test's temp dir, or on a
// TCP port of 127.0.0.1 when started with StartTCP.
type Server struct {
	tb     testing.TB
	dir    string
	socket string // unix socket path; empty for a TCP server
	addr   string // 127.0.0.1:port; empty for a unix socket server
	proc   *process
}

// Start launches redis-server and waits until it accepts connections; it is stopped when the
// test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, dir: tempDir(tb)}
	s.socket = filepath.Join(s.dir, "redis.sock")
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

// StartTCP is Start on a free TCP port of 127.0.0.1, for clients (Sentinel, Cluster, other
// processes) that cannot reach a unix socket.
func StartTCP(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, dir: tempDir(tb)}
	s.proc, s.addr = startOnFreePort(tb, "redis-server", nil, func(port string) []string {
		return serverArgs(s.dir, "--bind", "127.0.0.1", "--port", port)
	})
	tb.Cleanup(s.Stop)
	return s
}

// URL is the REDIS_URL for this server.
func (s *Server) URL() string {
	if s.addr != "" {
		return "redis://" + s.addr
	}
	return "unix://" + s.socket
}

// Socket is the unix socket path, for clients that take an address; empty for a TCP server.
func (s *Server) Socket() string { return s.socket }

// Addr is the TCP address (127.0.0.1:port); empty for a unix socket server.
func (s *Server) Addr() string { return s.addr }

func (s *Server) start() {
	s.tb.Helper()
	if s.addr != "" {
		// Restart of a TCP server: it must come back on the same port, so no retrying elsewhere.
		_, port, _ := net.SplitHostPort(s.addr)
		s.proc = launch(s.tb, "redis-server", serverArgs(s.dir, "--bind", "127.0.0.1", "--port", port)...)
		if err := s.proc.waitReady("tcp", s.addr, nil); err != nil {
			s.proc.kill()
			s.tb.Fatalf("redis-server on %s: %v", s.addr, err)
		}
		return
	}
	s.proc = launch(s.tb, "redis-server", serverArgs(s.dir,
		"--port", "0", "--unixsocket", s.socket, "--unixsocketperm", "700")...)
	if err := s.proc.waitReady("unix", s.socket, nil); err != nil {
		s.proc.kill()
		s.tb.Fatalf("redis-server on %s: %v", s.socket, err)
	}
}

// Stop kills the server, as an outage would.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	s.proc.kill()
	s.proc = nil
	if s.socket != "" {
		_ = os.Remove(s.socket)
	}
}

// Restart starts the server again on the same socket or port after Stop; its data is gone.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}

// StartReplica starts a redis-server on TCP that replicates master (which must be on TCP too, as
// from StartTCP) and waits until the master counts it among its connected replicas, so a WAIT on
// the master has a replica to wait for. It stops when the test ends.
func StartReplica(tb testing.TB, master *Server) *Server {
	tb.Helper()
	if master.addr == "" {
		tb.Fatal("redistest: StartReplica needs a TCP master (StartTCP)")
	}
	host, port, _ := net.SplitHostPort(master.addr)
	s := &Server{tb: tb, dir: tempDir(tb)}
	linked := func(c *conn) error {
		v, err := c.do("INFO", "replication")
		if err != nil {
			return err
		}
		if info, _ := v.(string); !strings.Contains(info, "master_link_status:up") {
			return errors.New("replica not linked to its master yet")
		}
		return nil
	}
	s.proc, s.addr = startOnFreePort(tb, "redis-server (replica)", linked, func(p string) []string {
		return serverArgs(s.dir, "--bind", "127.0.0.1", "--port", p, "--replicaof", host, port)
	})
	tb.Cleanup(s.Stop)
	// The replica is up once the master lists it; until then WAIT would count nobody.
	if err := master.proc.waitReady("tcp", master.addr, func(c *conn) error {
		v, err := c.do("INFO", "replication")
		if err != nil {
			return err
		}
		if info, _ := v.(string); strings.Contains(info, "\r\nconnected_slaves:0\r\n") {
			return errors.New("the master lists no replica yet")
		}
		return nil
	}); err != nil {
		tb.Fatalf("master %s: %v", master.addr, err)
	}
	return s
}

// Pause freezes the server process (SIGSTOP) until Resume: it keeps its connections open and
// answers nothing, as a server stuck behind a full disk or a long fork would. A paused replica
// stays connected to its master but acknowledges no writes.
func (s *Server) Pause() {
	s.tb.Helper()
	if err := s.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.tb.Fatalf("pause redis-server: %v", err)
	}
}

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() {
	s.tb.Helper()
	if err := s.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.tb.Fatalf("resume redis-server: %v", err)
	}
}

// StartSentinel starts a master redis-server on TCP with one replica, as Sentinel deployments
// run, and one Sentinel monitoring the master as SentinelMaster with a quorum of 1, and returns a
// REDIS_URL that reaches the master through the Sentinel
// (redis://127.0.0.1:<sentinel port>/0?master_name=mymaster). The Sentinel port speaks only the
// Sentinel protocol, so a client that ignored master_name would fail, not pass by luck. The
// replica makes clients that wait for replication (WAIT) really wait. Every process stops when
// the test ends.
func StartSentinel(tb testing.TB) string {
	tb.Helper()
	master := StartTCP(tb)
	StartReplica(tb, master)
	_, masterPort, _ := net.SplitHostPort(master.addr)
	dir := tempDir(tb)
	conf := filepath.Join(dir, "sentinel.conf")
	// Sentinel resolves its master from its own config, so once it answers
	// GET-MASTER-ADDR-BY-NAME with our master a client can use it.
	knowsMaster := func(c *conn) error {
		v, err := c.do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		if err != nil {
			return err
		}
		if got := fmt.Sprint(v); got != fmt.Sprint([]any{"127.0.0.1", masterPort}) {
			return fmt.Errorf("sentinel reports master %s", got)
		}
		return nil
	}
	p, addr := startOnFreePort(tb, "sentinel", knowsMaster, func(port string) []string {
		// Sentinel rewrites its config file, so it is written afresh for every attempt.
		body := strings.Join([]string{
			"bind 127.0.0.1",
			"port " + port,
			"dir " + strconv.Quote(dir),
			"sentinel monitor " + SentinelMaster + " 127.0.0.1 " + masterPort + " 1",
			"",
		}, "\n")
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
		return []string{conf, "--sentinel", "--loglevel", "warning"}
	})
	tb.Cleanup(p.kill)
	return "redis://" + addr + "/0?master_name=" + SentinelMaster
}

// StartCluster starts a one-node Redis Cluster that owns all 16384 slots and returns its
// REDIS_URL (redis://127.0.0.1:<port>?cluster=true). One node is enough to exercise the cluster
// client and the server's cluster rules: a cluster node refuses multi-key operations whose keys
// hash to different slots (CROSSSLOT) even when it owns every slot. It stops when the test ends.
//
// A fresh cluster node reports cluster_state:fail for about two seconds after it starts, however
// quickly its slots are assigned (Redis's writable delay), so this takes about two seconds.
func StartCluster(tb testing.TB) string {
	tb.Helper()
	dir := tempDir(tb)
	nodes := filepath.Join(dir, "nodes.conf")
	p, addr := startOnFreePort(tb, "redis-server (cluster)", nil, func(port string) []string {
		// The cluster bus defaults to port+10000, which is out of range for high ephemeral
		// ports and may be taken, so it gets a free port of its own.
		bus, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		// A node from a failed attempt may have left its identity behind.
		_ = os.Remove(nodes)
		return serverArgs(dir, "--bind", "127.0.0.1", "--port", port,
			"--cluster-enabled", "yes", "--cluster-config-file", nodes, "--cluster-port", bus,
			// A lone node never learns its own address from a peer and would report an empty
			// host in CLUSTER SLOTS; announce the one clients use.
			"--cluster-announce-ip", "127.0.0.1")
	})
	tb.Cleanup(p.kill)

	c, err := dial("tcp", addr)
	if err != nil {
		tb.Fatalf("cluster node %s: %v", addr, err)
	}
	defer c.close()
	if _, err := c.do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		tb.Fatalf("cluster node %s: CLUSTER ADDSLOTSRANGE: %v\n%s", addr, err, p.logs())
	}
	clusterOK := func(c *conn) error {
		v, err := c.do("CLUSTER", "INFO")
		if err != nil {
			return err
		}
		info, _ := v.(string)
		if !strings.Contains(info, "cluster_state:ok") {
			return errors.New("cluster_state is not ok yet")
		}
		return nil
	}
	if err := p.waitReady("tcp", addr, clusterOK); err != nil {
		tb.Fatalf("cluster node %s: %v", addr, err)
	}
	return "redis://" + addr + "?cluster=true"
}

// serverArgs are the flags every test server shares: no persistence, quiet logs, files in dir.
func serverArgs(dir string, extra ...string) []string {
	return append([]string{"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning"}, extra...)
}

// tempDir makes a short-named temp dir: t.TempDir's long paths can overflow the ~100-byte limit
// on unix socket paths.
func tempDir(tb testing.TB) string {
	tb.Helper()
	requireRedis(tb)
	dir, err := os.MkdirTemp("", "tapbot-redis-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func requireRedis(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (apt-get install -y redis-server); the store tests need a real one: %v", err)
	}
}

// pickPort chooses the port for each attempt; a variable so the package's own tests can hand out
// a taken port and check the retry.
var pickPort = freePort

// freePort asks the kernel for a free port on 127.0.0.1. The port is released before the caller
// binds it, so another process can take it in between; callers retry on that collision.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// startOnFreePort launches redis-server with args(port) on free ports until one attempt becomes
// ready (answers as itself, and passes ready if given) or fails for a reason other than a port
// collision.
func startOnFreePort(tb testing.TB, what string, ready func(*conn) error, args func(port string) []string) (*process, string) {
	tb.Helper()
	var last error
	for range portAttempts {
		port, err := pickPort()
		if err != nil {
			tb.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", port)
		p := launch(tb, "redis-server", args(port)...)
		err = p.waitReady("tcp", addr, ready)
		if err == nil {
			return p, addr
		}
		p.kill()
		if !errors.Is(err, errPortTaken) {
			tb.Fatalf("%s on %s: %v", what, addr, err)
		}
		last = err
	}
	tb.Fatalf("%s: no free port after %d attempts: %v", what, portAttempts, last)
	return nil, ""
}

// errPortTaken is a process exiting because a port it was told to bind was already in use.
var errPortTaken = errors.New("port already in use")

// process is a running redis-server (or sentinel) with its output kept for failure messages.
type process struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed once the process has exited and err is set
	err    error
}

func launch(tb testing.TB, name string, args ...string) *process {
	tb.Helper()
	p := &process{cmd: exec.Command(name, args...), out: new(syncBuffer), exited: make(chan struct{})}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// Wait also waits for the output copier; do not let a stray inherited pipe hang it.
	p.cmd.WaitDelay = time.Second
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p
}

func (p *process) logs() string { return p.out.String() }

// kill stops the process at once, as an outage would, and waits for it to be gone.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// waitReady polls until the process answers on network/addr as itself (INFO's process_id is its
// pid, so another server that already held the port cannot pass for it) and then ready, if given,
// succeeds. It gives up when the process exits or after startTimeout.
func (p *process) waitReady(network, addr string, ready func(*conn) error) error {
	deadline := time.Now().Add(startTimeout)
	pid := strconv.Itoa(p.cmd.Process.Pid)
	for {
		err := p.check(network, addr, pid, ready)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			logs := p.logs()
			if strings.Contains(logs, "Address already in use") {
				return fmt.Errorf("%w: %v\n%s", errPortTaken, p.err, logs)
			}
			return fmt.Errorf("exited before it was ready (%v):\n%s", p.err, logs)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %v\n%s", startTimeout, err, p.logs())
		}
	}
}

func (p *process) check(network, addr, pid string, ready func(*conn) error) error {
	c, err := dial(network, addr)
	if err != nil {
		return err
	}
	defer c.close()
	v, err := c.do("INFO", "server")
	if err != nil {
		return err
	}
	info, _ := v.(string)
	if !strings.Contains(info, "\r\nprocess_id:"+pid+"\r\n") {
		return fmt.Errorf("%s is answered by another process", addr)
	}
	if ready != nil {
		return ready(c)
	}
	return nil
}

// syncBuffer collects a process's output; the copier goroutine writes while a failing test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
