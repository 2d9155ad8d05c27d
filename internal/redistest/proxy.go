package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a Server that can lose what a network loses: the reply to a
// command the server has already run, or a command before it reaches the server. It exists to
// test what a client does when it cannot tell whether its command ran: go-redis sends the command
// again on a fresh connection (it retries after io.EOF or a read timeout even once the command
// was written), so every write tapbot makes must recognise its own earlier attempt.
//
// It relays one command at a time per connection (read a command, forward it, read its reply,
// pass it back), so it always knows which reply belongs to which command; pipelines still work,
// one command after another. It speaks RESP2 and RESP3 and does not support pub/sub.
type Proxy struct {
	tb       testing.TB
	ln       net.Listener
	network  string // the upstream server's network and address
	upstream string

	mu     sync.Mutex
	faults []*fault
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// Match picks the commands a fault applies to. It gets the command as sent, name first in the
// client's spelling (go-redis sends lower case; compare with strings.EqualFold).
type Match func(cmd []string) bool

type fault struct {
	match  Match
	drop   bool // forward, then lose the reply; otherwise lose the command itself
	skip   int  // matching commands to let through first
	left   int  // matching commands still to act on; -1 for every one
	fired  int
	notify chan struct{} // closed when the fault first acts
	then   func()        // run after a dropped reply, before the client's connection closes
}

// StartProxy starts a proxy on a free port of 127.0.0.1 in front of upstream; it stops, closing
// every connection, when the test ends.
func StartProxy(tb testing.TB, upstream *Server) *Proxy {
	tb.Helper()
	p := &Proxy{tb: tb, network: "unix", upstream: upstream.socket, conns: map[net.Conn]bool{}}
	if upstream.addr != "" {
		p.network, p.upstream = "tcp", upstream.addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest proxy: %v", err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's TCP address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the REDIS_URL that reaches the server through the proxy.
func (p *Proxy) URL() string { return "redis://" + p.Addr() }

// DropReply makes the proxy forward the next command that match accepts and that the server
// runs without an error, throw the server's reply away, and close the client's connection, as a
// connection reset after the server did the work would. An error reply (a NOSCRIPT, say) is
// passed on and does not count. The returned channel closes once a reply was dropped.
func (p *Proxy) DropReply(match Match) <-chan struct{} {
	return p.add(&fault{match: match, drop: true, left: 1})
}

// DropReplyThen is DropReply that runs then after the server ran the command and before the
// client learns that its connection is gone, so a test can make another client write in between
// the command and the retry the client sends after the lost reply.
func (p *Proxy) DropReplyThen(match Match, then func()) <-chan struct{} {
	return p.add(&fault{match: match, drop: true, left: 1, then: then})
}

// Refuse makes the proxy close the client's connection instead of forwarding each command that
// match accepts, after letting the first skip of them through, until stop is called: the server
// never sees them, as during an outage of the path to it. A command let through counts towards
// skip only when the server ran it without an error (a NOSCRIPT before the script is loaded does
// not). The returned channel closes once a command was refused.
func (p *Proxy) Refuse(match Match, skip int) (fired <-chan struct{}, stop func()) {
	f := &fault{match: match, skip: skip, left: -1}
	return p.add(f), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		f.left = 0
	}
}

// Fired counts the commands the proxy's faults have acted on so far.
func (p *Proxy) Fired() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.faults {
		n += f.fired
	}
	return n
}

func (p *Proxy) add(f *fault) <-chan struct{} {
	f.notify = make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, f)
	return f.notify
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial(p.network, p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(c, up)
			p.untrack(c, up)
		}()
	}
}

func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// action is what the proxy does with one command.
type action int

const (
	relay action = iota
	dropReply
	refuse
	skipOne // relay, and count it against the fault's skip if the server runs it
)

// decide picks the first armed fault that matches cmd, and counts the match against it.
func (p *Proxy) decide(cmd []string) (action, *fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faults {
		if f.left == 0 || !f.match(cmd) {
			continue
		}
		if f.skip > 0 {
			return skipOne, f // counted once the reply proves the command ran
		}
		if f.drop {
			return dropReply, f // counted once the reply proves the command ran
		}
		p.fireLocked(f)
		return refuse, f
	}
	return relay, nil
}

func (p *Proxy) fireLocked(f *fault) {
	if f.left > 0 {
		f.left--
	}
	f.fired++
	if f.fired == 1 {
		close(f.notify)
	}
}

// relay passes commands and replies between a client and the server until either side closes or
// a fault closes the connection.
func (p *Proxy) relay(client, up net.Conn) {
	cr, ur := bufio.NewReader(client), bufio.NewReader(up)
	for {
		raw, cmd, err := readCommand(cr)
		if err != nil {
			return
		}
		act, f := p.decide(cmd)
		if act == refuse {
			return
		}
		if _, err := up.Write(raw); err != nil {
			return
		}
		var reply bytes.Buffer
		if err := readReply(ur, &reply); err != nil {
			return
		}
		if kind := reply.Bytes()[0]; act != relay && kind != '-' && kind != '!' {
			p.mu.Lock()
			drop := act == dropReply && f.left != 0
			switch {
			case drop:
				p.fireLocked(f)
			case act == skipOne && f.skip > 0:
				f.skip--
			}
			p.mu.Unlock()
			if drop {
				if f.then != nil {
					f.then()
				}
				return
			}
		}
		if _, err := client.Write(reply.Bytes()); err != nil {
			return
		}
	}
}

// readCommand reads one command as a client sends it: an array of bulk strings.
func readCommand(r *bufio.Reader) (raw []byte, cmd []string, err error) {
	var buf bytes.Buffer
	line, err := readLine(r, &buf)
	if err != nil {
		return nil, nil, err
	}
	if len(line) == 0 || line[0] != '*' {
		return nil, nil, fmt.Errorf("redistest proxy: command is not an array: %q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return nil, nil, fmt.Errorf("redistest proxy: bad array length %q", line)
	}
	for range n {
		line, err := readLine(r, &buf)
		if err != nil {
			return nil, nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			return nil, nil, fmt.Errorf("redistest proxy: argument is not a bulk string: %q", line)
		}
		size, err := strconv.Atoi(line[1:])
		if err != nil || size < 0 {
			return nil, nil, fmt.Errorf("redistest proxy: bad bulk length %q", line)
		}
		arg := make([]byte, size+2)
		if _, err := io.ReadFull(r, arg); err != nil {
			return nil, nil, err
		}
		buf.Write(arg)
		cmd = append(cmd, string(arg[:size]))
	}
	return buf.Bytes(), cmd, nil
}

// readReply copies one complete RESP2 or RESP3 reply (attributes included) from r to w.
func readReply(r *bufio.Reader, w *bytes.Buffer) error {
	line, err := readLine(r, w)
	if err != nil {
		return err
	}
	if line == "" {
		return errors.New("redistest proxy: empty reply line")
	}
	kind, body := line[0], line[1:]
	switch kind {
	case '+', '-', ':', ',', '#', '(', '_':
		return nil
	case '$', '!', '=':
		n, err := strconv.Atoi(body)
		if err != nil {
			return fmt.Errorf("redistest proxy: bad length %q", line)
		}
		if n < 0 {
			return nil // RESP2 null bulk string
		}
		_, err = io.CopyN(w, r, int64(n)+2)
		return err
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return fmt.Errorf("redistest proxy: bad length %q", line)
		}
		if kind == '%' || kind == '|' {
			n *= 2 // maps and attributes hold key-value pairs
		}
		for range max(n, 0) {
			if err := readReply(r, w); err != nil {
				return err
			}
		}
		if kind == '|' {
			return readReply(r, w) // an attribute precedes the reply it describes
		}
		return nil
	}
	return fmt.Errorf("redistest proxy: unknown reply type %q", line)
}

// readLine reads a CRLF-terminated line, copies it to w, and returns it without the CRLF.
func readLine(r *bufio.Reader, w *bytes.Buffer) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	w.WriteString(line)
	if !strings.HasSuffix(line, "\r\n") {
		return "", fmt.Errorf("redistest proxy: line without CRLF: %q", line)
	}
	return line[:len(line)-2], nil
}

// HasArg is a Match for commands named name (any case) with an argument that starts with prefix:
// a key, typically.
func HasArg(name, prefix string) Match {
	return func(cmd []string) bool {
		if len(cmd) == 0 || name != "" && !strings.EqualFold(cmd[0], name) {
			return false
		}
		for _, a := range cmd[1:] {
			if strings.HasPrefix(a, prefix) {
				return true
			}
		}
		return false
	}
}
