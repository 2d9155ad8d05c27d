package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

type wsConn struct {
	id        int
	ws        *websocket.Conn
	wmu       sync.Mutex
	closeOnce sync.Once
	done      chan struct{}
}

func (c *wsConn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

func (c *wsConn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.ws.Close()
	})
}

// envelope is one Socket Mode request the fake sends.
type envelope struct {
	id      string
	typ     string
	payload json.RawMessage
	accepts bool
	attempt int
	acked   bool

	// what the ack means, by kind
	kind    string // "slash_commands", "block_actions", "view_submission", "view_closed", "events_api"
	user    string
	channel string
	viewID  string
}

type delivery struct {
	env     *envelope
	attempt int
	sent    time.Time
	ch      chan Ack
}

func (e *envelope) frame(attempt int) []byte {
	m := map[string]any{
		"envelope_id":              e.id,
		"type":                     e.typ,
		"accepts_response_payload": e.accepts,
		"payload":                  e.payload,
	}
	if e.typ == "events_api" || attempt > 0 {
		m["retry_attempt"] = attempt
		reason := ""
		if attempt > 0 {
			reason = "timeout"
		}
		m["retry_reason"] = reason
	}
	return mustJSON(m)
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket)
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	if !valid {
		s.violationLocked("socket mode: websocket dial with unknown or reused ticket (call apps.connections.open for every connection)")
		s.mu.Unlock()
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{ws: ws, done: make(chan struct{})}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.connects++
	c.id = s.connects
	n := len(s.conns) + 1
	s.mu.Unlock()

	hello := mustJSON(map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info": map[string]any{
			"host":                        fmt.Sprintf("applink-fake-%d", c.id),
			"build_number":                1,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": s.opts.AppID},
	})
	if err := c.write(hello); err != nil {
		c.close()
		return
	}
	_ = ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(5*time.Second))

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.conns = append(s.conns, c)
	s.notifyLocked()
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		s.pinger(c)
	}()

	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			break
		}
		s.handleAck(data)
	}
	c.close()
	s.mu.Lock()
	s.conns = slices.DeleteFunc(s.conns, func(x *wsConn) bool { return x == c })
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) pinger(c *wsConn) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-c.done:
			return
		case <-s.done:
			return
		case <-t.C:
			if err := c.ws.WriteControl(websocket.PingMessage, fmt.Appendf(nil, "ping-%d", i), time.Now().Add(5*time.Second)); err != nil {
				c.close()
				return
			}
		}
	}
}

// DropConnections abruptly closes every Socket Mode connection (no close
// frame, as when a network path dies), so reconnect logic can be tested.
// It returns how many were closed.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return len(conns)
}

// RequestDisconnect sends {"type":"disconnect","reason":reason} to every
// connection, as Slack does before rotating them ("refresh_requested",
// "warning", "link_disabled"), and closes them DisconnectGrace later unless
// the client already has. It returns how many connections were told.
func (s *Server) RequestDisconnect(reason string) int {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	if !s.closed {
		s.wg.Add(len(conns))
	} else {
		conns = nil
	}
	s.mu.Unlock()
	for _, c := range conns {
		msg := mustJSON(map[string]any{
			"type":       "disconnect",
			"reason":     reason,
			"debug_info": map[string]any{"host": fmt.Sprintf("applink-fake-%d", c.id)},
		})
		_ = c.write(msg)
		go func() {
			defer s.wg.Done()
			t := time.NewTimer(s.opts.DisconnectGrace)
			defer t.Stop()
			select {
			case <-t.C:
				c.close()
			case <-c.done:
			case <-s.done:
			}
		}()
	}
	return len(conns)
}

// WaitConnections waits until at least n Socket Mode connections are open.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	return s.WaitFor(ctx, func() bool { return s.ConnectionCount() >= n })
}

// handleAck processes one frame the bot sent over Socket Mode.
func (s *Server) handleAck(data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(data) >= MaxAckBytes {
		id := "?"
		var head struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &head) == nil {
			id = head.EnvelopeID
		}
		s.violationLocked("socket mode: ack for envelope %s is %d bytes (>= %d); Slack silently drops it", id, len(data), MaxAckBytes)
		return
	}
	var a struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &a); err != nil || a.EnvelopeID == "" {
		s.violationLocked("socket mode: unusable frame from client: %.200s", data)
		return
	}
	list := s.pending[a.EnvelopeID]
	if len(list) == 0 {
		if s.envelopes[a.EnvelopeID] != nil {
			s.violationLocked("socket mode: extra ack for envelope %s", a.EnvelopeID)
		} else {
			s.violationLocked("socket mode: ack for unknown envelope %s", a.EnvelopeID)
		}
		return
	}
	d := list[0]
	if len(list) == 1 {
		delete(s.pending, a.EnvelopeID)
	} else {
		s.pending[a.EnvelopeID] = list[1:]
	}
	payload := a.Payload
	if p := strings.TrimSpace(string(payload)); p == "" || p == "null" {
		payload = nil
	}
	ack := Ack{
		EnvelopeID:   a.EnvelopeID,
		Type:         d.env.typ,
		Payload:      payload,
		Latency:      time.Since(d.sent),
		RetryAttempt: d.attempt,
	}
	if payload != nil {
		var ra struct {
			ResponseAction string `json:"response_action"`
		}
		_ = json.Unmarshal(payload, &ra)
		ack.ResponseAction = ra.ResponseAction
	}
	s.acks = append(s.acks, ack)
	first := !d.env.acked
	d.env.acked = true
	switch {
	case ack.Latency > AckDeadline:
		s.violationLocked("socket mode: ack for %s envelope %s after %v (> %v); Slack already showed the user an error and ignores the ack payload",
			d.env.kind, a.EnvelopeID, ack.Latency.Round(time.Millisecond), AckDeadline)
	case first:
		s.applyAckLocked(d.env, payload)
	}
	s.notifyLocked()
	d.ch <- ack
}

// applyAckLocked does what Slack does with an ack's payload.
func (s *Server) applyAckLocked(env *envelope, payload json.RawMessage) {
	switch env.kind {
	case "slash_commands":
		if payload == nil {
			return
		}
		var msg struct {
			Text         string          `json:"text"`
			Blocks       json.RawMessage `json:"blocks"`
			ResponseType string          `json:"response_type"`
		}
		if err := json.Unmarshal(payload, &msg); err != nil {
			s.violationLocked("slash command ack %s: payload is not a message object: %v", env.id, err)
			return
		}
		blocks, code, msgs := checkMessage(msg.Text, string(msg.Blocks))
		if code != "" {
			s.violationLocked("slash command ack %s: %s%s", env.id, code, joinMsgs(msgs))
			return
		}
		if msg.Text == "" && noBlocks(blocks) {
			return
		}
		if msg.ResponseType == "in_channel" {
			s.persistLocked(env.channel, "", msg.Text, blocks, nil, "slash_command_ack")
		} else {
			s.ephemeralLocked(env.channel, env.user, msg.Text, blocks, "slash_command_ack")
		}
	case "view_submission":
		s.applyViewSubmissionAckLocked(env, payload)
	}
}

func joinMsgs(msgs []string) string {
	if len(msgs) == 0 {
		return ""
	}
	return ": " + strings.Join(msgs, "; ")
}

func (s *Server) applyViewSubmissionAckLocked(env *envelope, payload json.RawMessage) {
	top := s.topViewLocked(env.user)
	if top == nil || top.id != env.viewID {
		return // the user already left this view
	}
	var r struct {
		ResponseAction string            `json:"response_action"`
		View           json.RawMessage   `json:"view"`
		Errors         map[string]string `json:"errors"`
	}
	if payload != nil {
		if err := json.Unmarshal(payload, &r); err != nil {
			s.violationLocked("view_submission ack %s: payload is not a response_action object: %v", env.id, err)
			return
		}
	}
	switch r.ResponseAction {
	case "":
		s.popViewLocked(env.user, "closed")
	case "clear":
		s.closeStackLocked(env.user, "cleared")
	case "errors":
		inputs := map[string]bool{}
		blocks, _ := top.obj["blocks"].([]any)
		for _, b := range blocks {
			if bm, _ := b.(map[string]any); str(bm["type"]) == "input" {
				inputs[str(bm["block_id"])] = true
			}
		}
		if len(r.Errors) == 0 {
			s.violationLocked("view_submission ack %s: response_action errors without errors", env.id)
		}
		for k := range r.Errors {
			if !inputs[k] {
				s.violationLocked("view_submission ack %s: errors key %q is not the block_id of an input block; Slack shows a generic error instead", env.id, k)
			}
		}
		rec := s.viewRecordLocked(top, "ack_errors")
		rec.Errors = r.Errors
		s.viewLog = append(s.viewLog, rec)
	case "update", "push":
		def, code, msgs := checkView(string(r.View))
		if code != "" {
			s.violationLocked("view_submission ack %s: response_action %s: %s%s", env.id, r.ResponseAction, code, joinMsgs(msgs))
			return
		}
		if r.ResponseAction == "update" {
			s.setViewDefLocked(top, def)
			s.logViewLocked(top, "ack_update")
			return
		}
		if len(s.stacks[env.user]) >= MaxViewStack {
			s.violationLocked("view_submission ack %s: response_action push: push_limit_reached", env.id)
			return
		}
		v := s.newViewLocked(env.user, def, top.rootID, top.id)
		s.stacks[env.user] = append(s.stacks[env.user], v.id)
		s.logViewLocked(v, "ack_push")
	default:
		s.violationLocked("view_submission ack %s: unknown response_action %q", env.id, r.ResponseAction)
	}
}

// deliver sends an envelope on one connection (round robin, or the one
// RouteTo names) and waits for its ack until ctx ends. With no such
// connection open it waits for one.
func (s *Server) deliver(ctx context.Context, env *envelope, attempt int) (Ack, error) {
	frame := env.frame(attempt)
	d := &delivery{env: env, attempt: attempt, ch: make(chan Ack, 1)}
	for {
		var c *wsConn
		err := s.WaitFor(ctx, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closed {
				return true
			}
			if len(s.conns) == 0 {
				return false
			}
			if s.route != 0 {
				i := slices.IndexFunc(s.conns, func(c *wsConn) bool { return c.id == s.route })
				if i < 0 {
					return false // wait for the connection the test routes to
				}
				c = s.conns[i]
			} else {
				c = s.conns[s.rr%len(s.conns)]
				s.rr++
			}
			d.sent = time.Now()
			s.pending[env.id] = append(s.pending[env.id], d)
			return true
		})
		if err != nil {
			return Ack{EnvelopeID: env.id, Type: env.typ}, fmt.Errorf("slackfake: no socket mode connection to deliver %s envelope %s: %w", env.kind, env.id, err)
		}
		if c == nil {
			return Ack{EnvelopeID: env.id, Type: env.typ}, errors.New("slackfake: server closed")
		}
		if err := c.write(frame); err != nil {
			s.mu.Lock()
			s.pending[env.id] = slices.DeleteFunc(s.pending[env.id], func(x *delivery) bool { return x == d })
			s.mu.Unlock()
			c.close()
			continue
		}
		break
	}
	select {
	case a := <-d.ch:
		return a, nil
	case <-ctx.Done():
		return Ack{EnvelopeID: env.id, Type: env.typ}, fmt.Errorf("slackfake: no ack for %s envelope %s: %w", env.kind, env.id, ctx.Err())
	case <-s.done:
		return Ack{EnvelopeID: env.id, Type: env.typ}, errors.New("slackfake: server closed")
	}
}

func (s *Server) newEnvelopeLocked(typ, kind string, accepts bool, payload any) *envelope {
	env := &envelope{id: newUUID(), typ: typ, kind: kind, accepts: accepts, payload: mustJSON(payload)}
	s.envelopes[env.id] = env
	return env
}

// Redeliver sends an already delivered envelope again (retry_attempt n,
// retry_reason "timeout"), as Slack does when it thinks an ack was lost, and
// waits for its ack. The ack's payload is not applied again: Slack acts on
// the first ack only.
func (s *Server) Redeliver(ctx context.Context, envelopeID string) (Ack, error) {
	s.mu.Lock()
	env := s.envelopes[envelopeID]
	if env == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: unknown envelope %s", envelopeID)
	}
	env.attempt++
	attempt := env.attempt
	s.mu.Unlock()
	return s.deliver(ctx, env, attempt)
}

// SendEnvelope delivers an arbitrary Socket Mode envelope of type typ
// ("events_api", "interactive", "slash_commands") with the given payload and
// waits for its ack. It is the escape hatch for payloads the typed drivers
// do not build; the fake does not interpret the ack.
func (s *Server) SendEnvelope(ctx context.Context, typ string, acceptsResponsePayload bool, payload any) (Ack, error) {
	s.mu.Lock()
	env := s.newEnvelopeLocked(typ, "raw "+typ, acceptsResponsePayload, payload)
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}

// SendEvent delivers an Events API event (the inner "event" object, e.g.
// {"type":"app_mention","user":"U1","text":"hi","channel":"C1"}) wrapped in
// an event_callback, as Slack does, and waits for its ack.
func (s *Server) SendEvent(ctx context.Context, event map[string]any) (Ack, error) {
	s.mu.Lock()
	ev := make(map[string]any, len(event)+1)
	for k, v := range event {
		ev[k] = v
	}
	if _, ok := ev["event_ts"]; !ok {
		ev["event_ts"] = s.newTSLocked()
	}
	now := s.now()
	payload := map[string]any{
		"token":                 verificationToken,
		"team_id":               s.opts.TeamID,
		"api_app_id":            s.opts.AppID,
		"event":                 ev,
		"type":                  "event_callback",
		"event_id":              s.newIDLocked("Ev"),
		"event_time":            now.Unix(),
		"is_ext_shared_channel": false,
		"authorizations": []any{map[string]any{
			"enterprise_id": nil, "team_id": s.opts.TeamID, "user_id": s.opts.BotUserID,
			"is_bot": true, "is_enterprise_install": false,
		}},
	}
	env := s.newEnvelopeLocked("events_api", "events_api", false, payload)
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}

// actingUserLocked checks that a user exists and can act in a channel.
func (s *Server) actingUserLocked(userID, channelID string) (*User, *channel, error) {
	u := s.users[userID]
	if u == nil {
		return nil, nil, fmt.Errorf("slackfake: unknown user %s (AddUser first)", userID)
	}
	if u.Deleted {
		return nil, nil, fmt.Errorf("slackfake: user %s is deactivated", userID)
	}
	if channelID == "" {
		return nil, nil, errors.New("slackfake: a channel is required")
	}
	if channelID == userID {
		channelID = s.dmLocked(userID).id
	}
	c := s.channels[channelID]
	if c == nil {
		return nil, nil, fmt.Errorf("slackfake: unknown channel %s (AddChannel or DMChannel first)", channelID)
	}
	if !c.hasMember(userID) {
		return nil, nil, fmt.Errorf("slackfake: user %s is not a member of %s", userID, channelID)
	}
	return u, c, nil
}

// SlashCommand has userID run "command text" in channelID (a channel ID, a
// DM ID, or userID itself for the user's DM with the app) and waits for the bot's ack. Slack mints a
// trigger_id (3s, single use) and a response_url (5 uses, 30 minutes) for
// it. An ack payload with text/blocks is shown as Slack shows it: ephemeral,
// or in the channel with response_type "in_channel".
func (s *Server) SlashCommand(ctx context.Context, userID, channelID, command, text string) (Ack, error) {
	if !strings.HasPrefix(command, "/") {
		return Ack{}, fmt.Errorf("slackfake: command %q must start with /", command)
	}
	s.mu.Lock()
	u, c, err := s.actingUserLocked(userID, channelID)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	payload := map[string]any{
		"token":                 verificationToken,
		"team_id":               s.opts.TeamID,
		"team_domain":           s.opts.TeamDomain,
		"channel_id":            c.id,
		"channel_name":          c.name,
		"user_id":               u.ID,
		"user_name":             u.Name,
		"command":               command,
		"text":                  text,
		"api_app_id":            s.opts.AppID,
		"is_enterprise_install": "false",
		"response_url":          s.newResponseURLLocked(&responseURL{channel: c.id, user: u.ID}),
		"trigger_id":            s.newTriggerLocked(u.ID, ""),
	}
	env := s.newEnvelopeLocked("slash_commands", "slash_commands", true, payload)
	env.user, env.channel = u.ID, c.id
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}

// ClickButton has userID click the button with actionID and value on a
// message (persisted or the user's ephemeral) and waits for the ack. It
// refuses if the message does not currently show that button, so a test
// cannot click what Slack no longer displays. The block_actions payload
// carries a fresh trigger_id and response_url.
func (s *Server) ClickButton(ctx context.Context, userID string, msg MessageRef, actionID, value string) (Ack, error) {
	return s.click(ctx, userID, msg, actionID, value, false)
}

// ClickStaleButton clicks a button that any earlier version of a persisted message showed, as a
// Slack client still showing the old version does (a second device, a slow refresh), or as a
// tampered client would: the clicker need not be a member of the channel. Slack still mints a
// real trigger_id and response_url for it, so the bot's own checks are what refuse it.
func (s *Server) ClickStaleButton(ctx context.Context, userID string, msg MessageRef, actionID, value string) (Ack, error) {
	return s.click(ctx, userID, msg, actionID, value, true)
}

func (s *Server) click(ctx context.Context, userID string, msg MessageRef, actionID, value string, stale bool) (Ack, error) {
	s.mu.Lock()
	u, c, err := s.actingUserLocked(userID, msg.Channel)
	if err != nil && stale && s.users[userID] != nil && s.channels[msg.Channel] != nil {
		u, c, err = s.users[userID], s.channels[msg.Channel], nil
	}
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	var blocks json.RawMessage
	var message map[string]any
	ephemeral := false
	if m := s.findMessageLocked(MessageRef{Channel: c.id, TS: msg.TS}); m != nil && !m.Deleted {
		blocks = m.Blocks
		if stale {
			for _, v := range m.History {
				if b, _ := findButton(v.Blocks, actionID, value); b != nil {
					blocks = v.Blocks
				}
			}
		}
		message = s.messageJSONLocked(m)
		delete(message, "channel")
	} else {
		for _, e := range s.ephemerals {
			if e.Channel == c.id && e.TS == msg.TS && e.User == u.ID && !e.Deleted {
				blocks, ephemeral = e.Blocks, true
			}
		}
		if !ephemeral {
			s.mu.Unlock()
			return Ack{}, fmt.Errorf("slackfake: no message %s in %s visible to %s", msg.TS, c.id, u.ID)
		}
	}
	btn, blockID := findButton(blocks, actionID, value)
	if btn == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: message %s in %s shows no button with action_id %q and value %q (buttons: %+v)",
			msg.TS, c.id, actionID, value, BlocksButtons(blocks))
	}
	ref := MessageRef{Channel: c.id, TS: msg.TS}
	payload := map[string]any{
		"type":       "block_actions",
		"user":       s.userObjLocked(u.ID),
		"api_app_id": s.opts.AppID,
		"token":      verificationToken,
		"container": map[string]any{
			"type": "message", "message_ts": msg.TS, "channel_id": c.id, "is_ephemeral": ephemeral,
		},
		"trigger_id":            s.newTriggerLocked(u.ID, ""),
		"team":                  s.teamObj(),
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": c.id, "name": c.name},
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          s.newResponseURLLocked(&responseURL{channel: c.id, user: u.ID, orig: &ref, origEphemeral: ephemeral}),
		"actions":               []any{buttonAction(btn, blockID, s.newTSLocked())},
	}
	if message != nil {
		payload["message"] = message
	}
	env := s.newEnvelopeLocked("interactive", "block_actions", false, payload)
	env.user, env.channel = u.ID, c.id
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}

func buttonAction(btn map[string]any, blockID, actionTS string) map[string]any {
	a := map[string]any{
		"action_id": str(btn["action_id"]),
		"block_id":  blockID,
		"text":      btn["text"],
		"type":      "button",
		"action_ts": actionTS,
	}
	if v, ok := btn["value"]; ok {
		a["value"] = v
	}
	if st, ok := btn["style"]; ok {
		a["style"] = st
	}
	return a
}

// ClickViewButton has userID click a button in the modal view they see and
// waits for the ack. The payload's trigger_id can be used for views.push.
func (s *Server) ClickViewButton(ctx context.Context, userID, viewID, actionID, value string) (Ack, error) {
	s.mu.Lock()
	top := s.topViewLocked(userID)
	if top == nil || top.id != viewID {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: view %s is not the view %s currently sees", viewID, userID)
	}
	btn, blockID := findButton(mustJSON(top.obj["blocks"]), actionID, value)
	if btn == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: view %s shows no button with action_id %q and value %q", viewID, actionID, value)
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  s.userObjLocked(userID),
		"api_app_id":            s.opts.AppID,
		"token":                 verificationToken,
		"container":             map[string]any{"type": "view", "view_id": viewID},
		"trigger_id":            s.newTriggerLocked(userID, viewID),
		"team":                  s.teamObj(),
		"enterprise":            nil,
		"is_enterprise_install": false,
		"view":                  top.obj,
		"actions":               []any{buttonAction(btn, blockID, s.newTSLocked())},
	}
	env := s.newEnvelopeLocked("interactive", "block_actions", false, payload)
	env.user, env.viewID = userID, viewID
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}

// SubmitView has userID press the submit button of the modal view they see,
// with values[block_id][action_id] entered into its input blocks, and waits
// for the ack. It refuses what Slack's client would not send: a view that is
// not on top, has no submit button, leaves a required input empty, or
// values for inputs or options the view does not have. The ack's
// response_action (errors, update, push, clear; none closes the view) is
// applied to the modal.
func (s *Server) SubmitView(ctx context.Context, userID, viewID string, values map[string]map[string]InputValue) (Ack, error) {
	s.mu.Lock()
	top := s.topViewLocked(userID)
	if top == nil || top.id != viewID {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: view %s is not the view %s currently sees", viewID, userID)
	}
	if top.obj["submit"] == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: view %s has no submit button", viewID)
	}
	state, err := buildState(top.obj, values)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: view %s: %w", viewID, err)
	}
	view := make(map[string]any, len(top.obj))
	for k, v := range top.obj {
		view[k] = v
	}
	view["state"] = map[string]any{"values": state}
	payload := map[string]any{
		"type":                  "view_submission",
		"team":                  s.teamObj(),
		"user":                  s.userObjLocked(userID),
		"api_app_id":            s.opts.AppID,
		"token":                 verificationToken,
		"trigger_id":            s.newTriggerLocked(userID, viewID),
		"view":                  view,
		"response_urls":         []any{},
		"is_enterprise_install": false,
		"enterprise":            nil,
	}
	env := s.newEnvelopeLocked("interactive", "view_submission", true, payload)
	env.user, env.viewID = userID, viewID
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}

// CloseView has userID press the close button of the view they see. The
// modal loses that view (all views with clear_on_close). With
// notify_on_close, Slack sends a view_closed payload and the ack is
// returned; otherwise the bot hears nothing and a zero Ack is returned.
func (s *Server) CloseView(ctx context.Context, userID, viewID string) (Ack, error) {
	s.mu.Lock()
	top := s.topViewLocked(userID)
	if top == nil || top.id != viewID {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: view %s is not the view %s currently sees", viewID, userID)
	}
	view := top.obj
	notify, _ := view["notify_on_close"].(bool)
	clear, _ := view["clear_on_close"].(bool)
	if clear {
		s.closeStackLocked(userID, "cleared")
	} else {
		s.popViewLocked(userID, "closed")
	}
	if !notify {
		s.mu.Unlock()
		return Ack{}, nil
	}
	payload := map[string]any{
		"type":                  "view_closed",
		"team":                  s.teamObj(),
		"user":                  s.userObjLocked(userID),
		"api_app_id":            s.opts.AppID,
		"token":                 verificationToken,
		"view":                  view,
		"is_cleared":            clear,
		"is_enterprise_install": false,
		"enterprise":            nil,
	}
	env := s.newEnvelopeLocked("interactive", "view_closed", false, payload)
	env.user, env.viewID = userID, viewID
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}
