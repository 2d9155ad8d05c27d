// Package slackfake is a protocol-level fake of Slack for end-to-end tests,
// demos and load generation.
//
// The real slack-go client (slack.New with slack.OptionAPIURL(fake.APIURL()))
// and the real socketmode client talk to it over 127.0.0.1 exactly as they
// talk to Slack: Web API calls over HTTP, Socket Mode over a websocket, and
// response_url POSTs over HTTP. The fake enforces the limits Slack enforces
// (Block Kit sizes, trigger_id lifetime, response_url budget, Socket Mode ack
// size, ...) and answers with Slack's error names, so a test cannot pass on a
// message Slack would reject. Every refusal is also recorded as a violation,
// so a test can assert that a whole scenario produced none.
//
// The fake also throttles the Web API by default, as Slack does: every method
// has Slack's published rate-limit tier (PublishedRateLimits), and a call over
// its limit is answered HTTP 429 with Retry-After and "ratelimited", which
// slack-go returns as *slack.RateLimitedError. Being throttled is not a
// violation; RateLimited counts the 429s. Turn throttling off with
// Options.RateLimits = &RateLimits{Off: true} (or SetRateLimits), or speed
// Slack's limits up with a copy of PublishedRateLimits() whose Speed is above 1.
// ThrottleFor makes Slack stricter for a while. Throttling runs on the real
// clock, not Options.Now.
//
// The package deliberately does not import "testing": it is also used by the
// no-config demo and the load generator. Create it with New and stop it with
// Close.
package slackfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Slack's documented limits that are not Block Kit field sizes.
const (
	// TriggerTTL is how long a trigger_id may be exchanged (views.open/push).
	TriggerTTL = 3 * time.Second
	// ResponseURLTTL is how long a response_url accepts POSTs.
	ResponseURLTTL = 30 * time.Minute
	// ResponseURLMaxUses is how many POSTs one response_url accepts.
	ResponseURLMaxUses = 5
	// AckDeadline is how long Slack waits for a Socket Mode ack before it
	// shows the user a timeout error and ignores the ack's payload.
	AckDeadline = 3 * time.Second
	// MaxAckBytes is the Socket Mode frame size at or above which Slack
	// silently drops an ack.
	MaxAckBytes = 20 * 1024
	// MaxViewStack is how many views a modal can hold.
	MaxViewStack = 3
)

// verificationToken is the deprecated "token" field Slack still puts in
// slash command and interaction payloads.
const verificationToken = "fake-verification-token"

// Options configures a Server. Every field is optional: zero values get
// realistic defaults, so New(Options{}) is a working fake.
type Options struct {
	// BotToken is the xoxb token Web API calls must carry.
	BotToken string
	// AppToken is the xapp app-level token apps.connections.open must carry.
	AppToken string
	// Now is the clock used for message timestamps and for the trigger_id
	// and response_url lifetimes, so tests can expire them without sleeping.
	// Ack latency is always measured with the real clock.
	Now func() time.Time

	TeamID     string // default "T0FAKETEAM"
	TeamDomain string // default "tapbot-fake"
	BotUserID  string // default "U0FAKEBOT"
	BotName    string // default "tapbot"
	BotID      string // default "B0FAKEBOT"
	AppID      string // default "A0FAKEAPP"

	// PingInterval is how often websocket pings are sent. slack-go's
	// socketmode client reconnects when it sees no ping for 30s, so this must
	// stay well below that. Default 5s.
	PingInterval time.Duration
	// DisconnectGrace is how long a connection stays open after a
	// "disconnect" message before the fake closes it, as Slack does.
	// Default 2s.
	DisconnectGrace time.Duration
	// Scopes are the scopes granted to the bot token: Slack reports them
	// in the X-OAuth-Scopes header of every Web API answer and refuses a
	// method whose scope is missing with missing_scope. nil means
	// DefaultScopes. SetScopes changes them later.
	Scopes []string
	// RateLimits is how the fake throttles Web API calls; nil means
	// PublishedRateLimits(): the fake throttles by default. SetRateLimits
	// changes them later.
	RateLimits *RateLimits
}

// User is a workspace member as users.info reports it.
type User struct {
	ID       string
	Name     string
	RealName string
	Email    string
	TZ       string // IANA name, e.g. "Europe/Berlin"
	IsBot    bool
	Deleted  bool
}

// MessageRef identifies a message (persisted or ephemeral) by channel and ts,
// the way Slack does.
type MessageRef struct {
	Channel string
	TS      string
}

// MessageVersion is one state a persisted message has held.
type MessageVersion struct {
	Text        string
	Blocks      json.RawMessage
	Attachments json.RawMessage
	// Source is what produced this version: "chat.postMessage",
	// "chat.update", "response_url", "slash_command_ack".
	Source string
	At     time.Time
}

// Message is a message Slack keeps in a channel's history.
type Message struct {
	Channel     string
	TS          string
	ThreadTS    string
	User        string // author; the bot's user ID for everything the bot posts
	Text        string
	Blocks      json.RawMessage
	Attachments json.RawMessage
	Source      string
	Deleted     bool
	// History holds every version the message has had, oldest first,
	// including the current one, so a test can assert that no version ever
	// held a secret.
	History []MessageVersion
}

// Ref returns the message's channel and ts.
func (m Message) Ref() MessageRef { return MessageRef{Channel: m.Channel, TS: m.TS} }

// PlainText is all human-visible text of the message (text plus every text
// in its blocks), one piece per line, for content assertions.
func (m Message) PlainText() string { return joinText(m.Text, m.Blocks) }

// Buttons lists the buttons the message currently shows.
func (m Message) Buttons() []Button { return BlocksButtons(m.Blocks) }

// Ephemeral is a message only one user sees; Slack does not keep it in
// history.
type Ephemeral struct {
	Channel string
	User    string
	TS      string
	Text    string
	Blocks  json.RawMessage
	// Source is "chat.postEphemeral", "response_url" or "slash_command_ack".
	Source string
	// Replaced counts how often replace_original rewrote it.
	Replaced int
	Deleted  bool
}

// Ref returns the ephemeral's channel and ts, usable with ClickButton.
func (e Ephemeral) Ref() MessageRef { return MessageRef{Channel: e.Channel, TS: e.TS} }

// PlainText is all human-visible text of the ephemeral.
func (e Ephemeral) PlainText() string { return joinText(e.Text, e.Blocks) }

// Buttons lists the buttons the ephemeral shows.
func (e Ephemeral) Buttons() []Button { return BlocksButtons(e.Blocks) }

// View is one event in a user's modal history (Views) or one view of a
// currently open modal (OpenViews).
type View struct {
	ID     string
	UserID string
	// Event is "open", "push", "update", "ack_update", "ack_push",
	// "ack_errors", "closed" or "cleared".
	Event      string
	CallbackID string
	Title      string
	// JSON is the full view object as Slack returns it from views.open.
	JSON json.RawMessage
	// Errors is the response_action "errors" map for Event "ack_errors".
	Errors map[string]string
	At     time.Time
}

// PlainText is all human-visible text of the view's blocks.
func (v View) PlainText() string {
	var obj struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	_ = json.Unmarshal(v.JSON, &obj)
	return joinText(v.Title, obj.Blocks)
}

// Call is one request the bot made: a Web API method or a response_url POST
// (Method "response_url").
type Call struct {
	Method string
	// Params are the request's parameters, JSON objects and arrays as raw
	// JSON text; the token is removed.
	Params map[string]string
	// Error is Slack's error code, empty on success; "ratelimited" for a
	// call answered HTTP 429 (see RateLimits), which did not run.
	Error string
	// Reset is set for a call that ran and whose connection was then closed
	// without an answer (ResetAfterApplying).
	Reset bool
	At    time.Time
}

// Ack is a Socket Mode acknowledgement the bot sent for an envelope.
type Ack struct {
	EnvelopeID string
	// Type is the envelope type: "slash_commands", "interactive",
	// "events_api".
	Type string
	// Payload is the ack's payload, nil when the bot acked without one.
	Payload json.RawMessage
	// Latency is the real time between sending the envelope and receiving
	// the ack.
	Latency time.Duration
	// ResponseAction is the payload's response_action ("errors", "update",
	// "push", "clear"), if any.
	ResponseAction string
	// RetryAttempt is 0 for the first delivery, n for the nth Redeliver.
	RetryAttempt int
}

// Server is the fake Slack. All methods are safe for concurrent use.
type Server struct {
	opts     Options
	ln       net.Listener
	srv      *http.Server
	base     string
	upgrader websocket.Upgrader
	done     chan struct{}
	wg       sync.WaitGroup

	mu         sync.Mutex
	changed    chan struct{}
	closed     bool
	seq        int
	lastTSUsec int64

	scopes   []string
	users    map[string]*User
	groups   map[string][]string
	channels map[string]*channel
	dms      map[string]string // user ID -> D channel ID

	messages     map[string][]*Message
	ephemerals   []*Ephemeral
	views        map[string]*viewState
	stacks       map[string][]string // user ID -> open view IDs, bottom first
	viewLog      []View
	homes        map[string]*viewState // user ID -> published Home tab; see home.go
	homeLog      []View
	homeOff      bool // the app's Home tab is disabled
	calls        []Call
	violations   []string
	triggers     map[string]*trigger
	responseURLs map[string]*responseURL

	tickets   map[string]bool
	conns     []*wsConn
	connects  int
	rr        int
	envelopes map[string]*envelope
	pending   map[string][]*delivery
	acks      []Ack

	rl limiter // Web API rate limits; see ratelimit.go

	faults map[string][]*apiFault // by Web API method; see faults.go
	route  int                    // the connection every envelope goes to; 0 for round robin
}

type channel struct {
	id        string
	name      string
	members   []string
	botMember bool
	dmUser    string
	private   bool
}

func (c *channel) isDM() bool { return c.dmUser != "" }

func (c *channel) hasMember(user string) bool {
	if c.isDM() {
		return user == c.dmUser
	}
	return len(c.members) == 0 || slices.Contains(c.members, user)
}

type trigger struct {
	user   string
	issued time.Time
	used   bool
	viewID string // set when issued by an interaction inside a modal
}

type responseURL struct {
	channel       string
	user          string
	issued        time.Time
	uses          int
	orig          *MessageRef // message whose button was clicked
	origEphemeral bool
	lastEphemeral *Ephemeral // last ephemeral posted through this URL
}

type viewState struct {
	id         string
	user       string
	hash       string
	externalID string
	rootID     string
	previousID string
	obj        map[string]any
	open       bool
}

// New starts a fake Slack on 127.0.0.1 with a random port. It panics if it
// cannot listen, like httptest.NewServer.
func New(opts Options) *Server {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&opts.BotToken, "xoxb-fake-bot-token")
	def(&opts.AppToken, "xapp-fake-app-token")
	def(&opts.TeamID, "T0FAKETEAM")
	def(&opts.TeamDomain, "tapbot-fake")
	def(&opts.BotUserID, "U0FAKEBOT")
	def(&opts.BotName, "tapbot")
	def(&opts.BotID, "B0FAKEBOT")
	def(&opts.AppID, "A0FAKEAPP")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 5 * time.Second
	}
	if opts.DisconnectGrace <= 0 {
		opts.DisconnectGrace = 2 * time.Second
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("slackfake: listen: %v", err))
	}
	s := &Server{
		opts:         opts,
		ln:           ln,
		base:         "http://" + ln.Addr().String(),
		done:         make(chan struct{}),
		changed:      make(chan struct{}),
		users:        map[string]*User{},
		groups:       map[string][]string{},
		channels:     map[string]*channel{},
		dms:          map[string]string{},
		messages:     map[string][]*Message{},
		views:        map[string]*viewState{},
		stacks:       map[string][]string{},
		triggers:     map[string]*trigger{},
		responseURLs: map[string]*responseURL{},
		tickets:      map[string]bool{},
		envelopes:    map[string]*envelope{},
		pending:      map[string][]*delivery{},
		scopes:       slices.Clone(DefaultScopes),
	}
	if opts.Scopes != nil {
		s.scopes = slices.Clone(opts.Scopes)
	}
	limits := PublishedRateLimits()
	if opts.RateLimits != nil {
		limits = *opts.RateLimits
	}
	s.rl = newLimiter(limits)
	// slack-go dials with "Origin: https://api.slack.com".
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.users[opts.BotUserID] = &User{ID: opts.BotUserID, Name: opts.BotName, RealName: opts.BotName, IsBot: true}

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/ws", s.handleWS)
	mux.HandleFunc("/response/", s.handleResponseURL)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// APIURL is the Web API base URL for slack.OptionAPIURL (trailing slash
// included).
func (s *Server) APIURL() string { return s.base + "/api/" }

// BaseURL is the server's root URL, e.g. "http://127.0.0.1:PORT".
func (s *Server) BaseURL() string { return s.base }

// BotToken is the token Web API calls must carry.
func (s *Server) BotToken() string { return s.opts.BotToken }

// AppToken is the app-level token apps.connections.open must carry.
func (s *Server) AppToken() string { return s.opts.AppToken }

// BotUserID is the bot's user ID (auth.test user_id).
func (s *Server) BotUserID() string { return s.opts.BotUserID }

// TeamID is the workspace ID.
func (s *Server) TeamID() string { return s.opts.TeamID }

// Close stops the server, closes every Socket Mode connection and waits for
// the fake's goroutines to end. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	conns := slices.Clone(s.conns)
	s.notifyLocked()
	s.mu.Unlock()

	for _, c := range conns {
		c.close()
	}
	_ = s.srv.Close()
	s.wg.Wait()
}

// AddUser adds or replaces a workspace member.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Name == "" {
		u.Name = strings.ToLower(u.ID)
	}
	cp := u
	s.users[u.ID] = &cp
	s.notifyLocked()
}

// AddGroup adds or replaces a user group (ID "S...") with its members.
func (s *Server) AddGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
	s.notifyLocked()
}

// AddChannel adds or replaces a channel ("C..." or "G...") with its human
// members; the bot is a member (use SetBotMember to change that). A channel
// without members lets every user act in it. A "G..." channel is private,
// any other public (use SetChannelPrivate to change that).
func (s *Server) AddChannel(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &channel{id: id, name: strings.ToLower(id), members: slices.Clone(members), botMember: true,
		private: strings.HasPrefix(id, "G")}
	s.notifyLocked()
}

// SetBotMember adds the bot to or removes it from a channel, so tests can
// exercise not_in_channel.
func (s *Server) SetBotMember(channelID string, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channels[channelID]; c != nil {
		c.botMember = member
	}
	s.notifyLocked()
}

// DMChannel returns the stable ID of the app's DM with userID ("D..."),
// creating it on first use, as conversations.open does.
func (s *Server) DMChannel(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dmLocked(userID).id
}

func (s *Server) dmLocked(userID string) *channel {
	if id, ok := s.dms[userID]; ok {
		return s.channels[id]
	}
	id := s.newIDLocked("D")
	c := &channel{id: id, name: "directmessage", botMember: true, dmUser: userID}
	s.channels[id] = c
	s.dms[userID] = id
	return c
}

// Messages returns the channel's visible (not deleted) messages, oldest
// first. channelID may be a user ID, meaning the app's DM with that user.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.dms[channelID]; ok {
		channelID = id
	}
	var out []Message
	for _, m := range s.messages[channelID] {
		if !m.Deleted {
			out = append(out, cloneMessage(m))
		}
	}
	return out
}

// LastMessage returns the channel's newest visible message.
func (s *Server) LastMessage(channelID string) (Message, bool) {
	ms := s.Messages(channelID)
	if len(ms) == 0 {
		return Message{}, false
	}
	return ms[len(ms)-1], true
}

// Message returns one message by reference, including deleted ones.
func (s *Server) Message(ref MessageRef) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.findMessageLocked(ref); m != nil {
		return cloneMessage(m), true
	}
	return Message{}, false
}

func (s *Server) findMessageLocked(ref MessageRef) *Message {
	for _, m := range s.messages[ref.Channel] {
		if m.TS == ref.TS {
			return m
		}
	}
	return nil
}

// Ephemerals returns the ephemeral messages shown to userID, oldest first,
// excluding deleted ones.
func (s *Server) Ephemerals(userID string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ephemeral
	for _, e := range s.ephemerals {
		if e.User == userID && !e.Deleted {
			out = append(out, *e)
		}
	}
	return out
}

// Views returns userID's modal history (every open, push, update, close),
// oldest first.
func (s *Server) Views(userID string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, v := range s.viewLog {
		if v.UserID == userID {
			out = append(out, v)
		}
	}
	return out
}

// OpenViews returns the views of userID's open modal, bottom first; the
// last one is what the user sees.
func (s *Server) OpenViews(userID string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, id := range s.stacks[userID] {
		out = append(out, s.viewRecordLocked(s.views[id], "open"))
	}
	return out
}

// Calls counts the bot's calls of a Web API method ("response_url" counts
// response_url POSTs), rate-limited ones included: every HTTP call counts.
// Served leaves out the 429s.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

// CallLog returns every call in arrival order.
func (s *Server) CallLog() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Violations lists everything Slack would have refused or dropped (and
// calls to methods the fake does not implement), in order. A well-behaved
// scenario leaves it empty.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// ResetViolations clears the violations list, for tests that provoke a
// refusal on purpose and then assert the rest of the scenario is clean.
func (s *Server) ResetViolations() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = nil
}

// Acks returns every ack received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// ConnectionCount is the number of open Socket Mode connections.
func (s *Server) ConnectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// TotalConnections is the number of Socket Mode connections ever accepted,
// so a test can wait for a reconnect.
func (s *Server) TotalConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// AllPersistedText is every string Slack keeps in channel history: all
// versions of all messages (including deleted ones and edit history), with
// every string inside their blocks and attachments (button values and URLs
// included). Ephemerals and modals are excluded: they are not persisted.
// Use it for secret-leak assertions.
func (s *Server) AllPersistedText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	chans := make([]string, 0, len(s.messages))
	for id := range s.messages {
		chans = append(chans, id)
	}
	sort.Strings(chans)
	var b strings.Builder
	for _, id := range chans {
		for _, m := range s.messages[id] {
			for _, v := range m.History {
				b.WriteString(v.Text)
				b.WriteByte('\n')
				for _, str := range allStrings(v.Blocks) {
					b.WriteString(str)
					b.WriteByte('\n')
				}
				for _, str := range allStrings(v.Attachments) {
					b.WriteString(str)
					b.WriteByte('\n')
				}
			}
		}
	}
	return b.String()
}

// WaitFor blocks until cond returns true or ctx ends. cond is re-evaluated
// whenever the fake's state changes (and periodically, so it may also look
// at state outside the fake). cond must not be called with locks the fake's
// methods need.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("slackfake: condition not met: %w", ctx.Err())
		}
	}
}

// notifyLocked wakes WaitFor callers. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) violationLocked(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
	s.notifyLocked()
}

func (s *Server) now() time.Time { return s.opts.Now() }

// newIDLocked mints a Slack-looking ID with the given prefix.
func (s *Server) newIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s0F%08X", prefix, s.seq)
}

// newTSLocked mints a unique, increasing message timestamp from the clock.
func (s *Server) newTSLocked() string {
	us := s.now().UnixMicro()
	if us <= s.lastTSUsec {
		us = s.lastTSUsec + 1
	}
	s.lastTSUsec = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

func (s *Server) newTriggerLocked(user, viewID string) string {
	now := s.now()
	s.seq++
	id := fmt.Sprintf("%d.%d.%s", now.Unix(), s.seq, randHex(16))
	s.triggers[id] = &trigger{user: user, issued: now, viewID: viewID}
	return id
}

func (s *Server) newResponseURLLocked(ru *responseURL) string {
	id := fmt.Sprintf("%s/%s", s.opts.TeamID, randHex(12))
	ru.issued = s.now()
	s.responseURLs[id] = ru
	return s.base + "/response/" + id
}

func randHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func cloneMessage(m *Message) Message {
	c := *m
	c.History = slices.Clone(m.History)
	return c
}

func (s *Server) userObjLocked(id string) map[string]any {
	name := id
	if u := s.users[id]; u != nil {
		name = u.Name
	}
	return map[string]any{"id": id, "username": name, "name": name, "team_id": s.opts.TeamID}
}

func (s *Server) teamObj() map[string]any {
	return map[string]any{"id": s.opts.TeamID, "domain": s.opts.TeamDomain}
}
