package slackfake

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"mime"
	"net/http"
	"strings"
	"time"
)

// params are a Web API call's arguments. Form values are used as sent; JSON
// body strings are unquoted and other JSON values kept as raw JSON text, so
// "view" and "blocks" read the same whichever encoding slack-go chose.
type params map[string]string

func (p params) has(k string) bool { _, ok := p[k]; return ok }

// result is a Web API response body.
type result map[string]any

func ok(fields result) result {
	if fields == nil {
		fields = result{}
	}
	fields["ok"] = true
	return fields
}

func fail(code string, messages ...string) result {
	r := result{"ok": false, "error": code}
	if len(messages) > 0 {
		r["response_metadata"] = map[string]any{"messages": messages}
	}
	return r
}

// lookupMisses are the errors of read methods that report "not found" as a
// lookup result rather than refusing the request; they are not violations.
var lookupMisses = map[string]string{
	"conversations.info":    "channel_not_found",
	"users.info":            "user_not_found",
	"users.lookupByEmail":   "users_not_found",
	"usergroups.users.list": "no_such_subteam",
}

type apiMethod func(s *Server, p params) result

var apiMethods = map[string]apiMethod{
	"auth.test":             (*Server).authTest,
	"apps.connections.open": (*Server).appsConnectionsOpen,
	"chat.postMessage":      (*Server).chatPostMessage,
	"chat.update":           (*Server).chatUpdate,
	"chat.postEphemeral":    (*Server).chatPostEphemeral,
	"chat.delete":           (*Server).chatDelete,
	"conversations.open":    (*Server).conversationsOpen,
	"conversations.info":    (*Server).conversationsInfo,
	"users.info":            (*Server).usersInfo,
	"users.lookupByEmail":   (*Server).usersLookupByEmail,
	"usergroups.users.list": (*Server).usergroupsUsersList,
	"views.open":            (*Server).viewsOpen,
	"views.push":            (*Server).viewsPush,
	"views.update":          (*Server).viewsUpdate,
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	p, parseErr := parseParams(r)
	token, fromHeader := "", false
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token, fromHeader = strings.TrimPrefix(h, "Bearer "), true
	} else {
		token = p["token"]
	}
	delete(p, "token")

	var res result
	injected := false // a refusal FailNext asked for: Slack's answer, not a violation
	handler, known := apiMethods[method]
	switch {
	case !known:
		res = fail("unknown_method")
	case parseErr != "":
		res = fail(parseErr)
	default:
		res = s.authorize(method, token, fromHeader)
		if res != nil {
			break
		}
		// Authenticated: the answer carries the scope headers whatever it is,
		// and the call counts against its rate limits before anything runs.
		res = s.checkScopes(method, p, w.Header().Set)
		s.mu.Lock()
		wait := s.throttleLocked(method, p)
		if wait > 0 {
			s.calls = append(s.calls, Call{Method: method, Params: maps.Clone(p), Error: errRateLimited, At: s.now()})
			s.notifyLocked()
		}
		s.mu.Unlock()
		if wait > 0 {
			writeRateLimited(w, wait)
			return
		}
		if res == nil {
			s.mu.Lock()
			f := s.takeFaultLocked(method, false)
			s.mu.Unlock()
			if f != nil {
				res, injected = fail(f.code), true
			} else {
				res = handler(s, p)
			}
		}
	}

	code, _ := res["error"].(string)
	s.mu.Lock()
	reset := code == "" && known && s.takeFaultLocked(method, true) != nil
	s.calls = append(s.calls, Call{Method: method, Params: maps.Clone(p), Error: code, Reset: reset, At: s.now()})
	switch {
	case injected:
		s.notifyLocked()
	case !known:
		s.violationLocked("%s: unknown_method (not implemented by slackfake)", method)
	case code != "" && lookupMisses[method] != code:
		detail := ""
		if md, ok := res["response_metadata"].(map[string]any); ok {
			if msgs, ok := md["messages"].([]string); ok {
				detail = ": " + strings.Join(msgs, "; ")
			}
		}
		s.violationLocked("%s: %s%s", method, code, detail)
	default:
		s.notifyLocked()
	}
	s.mu.Unlock()

	if reset {
		resetConnection(w)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(res)
}

// authorize checks the token as Slack does: apps.connections.open takes only
// the app-level token, and only in the Authorization header; everything else
// takes only the bot token, in the header or as a "token" parameter.
func (s *Server) authorize(method, token string, fromHeader bool) result {
	if method == "apps.connections.open" {
		switch {
		case token == "" || !fromHeader:
			return fail("not_authed")
		case token == s.opts.BotToken:
			return fail("not_allowed_token_type")
		case token != s.opts.AppToken:
			return fail("invalid_auth")
		}
		return nil
	}
	switch {
	case token == "":
		return fail("not_authed")
	case token == s.opts.AppToken:
		return fail("not_allowed_token_type")
	case token != s.opts.BotToken:
		return fail("invalid_auth")
	}
	return nil
}

func parseParams(r *http.Request) (params, string) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			return p, "request_timeout"
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return p, ""
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return p, "invalid_json"
		}
		for k, v := range m {
			if string(v) == "null" {
				continue
			}
			var sv string
			if json.Unmarshal(v, &sv) == nil {
				p[k] = sv
			} else {
				p[k] = string(v)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return p, "invalid_form_data"
		}
		for k, v := range r.MultipartForm.Value {
			p[k] = v[0]
		}
	default:
		if err := r.ParseForm(); err != nil {
			return p, "invalid_form_data"
		}
		for k, v := range r.PostForm {
			p[k] = v[0]
		}
	}
	return p, ""
}

func (s *Server) authTest(params) result {
	return ok(result{
		"url":                   "https://" + s.opts.TeamDomain + ".slack.com/",
		"team":                  s.opts.TeamDomain,
		"user":                  s.opts.BotName,
		"team_id":               s.opts.TeamID,
		"user_id":               s.opts.BotUserID,
		"bot_id":                s.opts.BotID,
		"is_enterprise_install": false,
	})
}

func (s *Server) appsConnectionsOpen(params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket := newUUID()
	s.tickets[ticket] = true
	return ok(result{"url": "ws" + strings.TrimPrefix(s.base, "http") + "/ws?ticket=" + ticket + "&app_id=" + s.opts.AppID})
}

// postTargetLocked resolves chat.postMessage's channel argument: a channel
// ID, a DM ID, or a user ID meaning the app's DM with that user.
func (s *Server) postTargetLocked(id string) (*channel, string) {
	if id == "" {
		return nil, "channel_not_found"
	}
	if u := s.users[id]; u != nil {
		switch {
		case u.Deleted:
			return nil, "user_disabled"
		case u.IsBot:
			return nil, "cannot_dm_bot"
		}
		return s.dmLocked(id), ""
	}
	return s.channelLocked(id)
}

// channelLocked resolves an existing conversation ID and checks that the bot
// may post in it.
func (s *Server) channelLocked(id string) (*channel, string) {
	c := s.channels[id]
	if c == nil {
		return nil, "channel_not_found"
	}
	if !c.botMember {
		return nil, "not_in_channel"
	}
	return c, ""
}

func (s *Server) messageJSONLocked(m *Message) map[string]any {
	out := map[string]any{
		"type":    "message",
		"user":    m.User,
		"bot_id":  s.opts.BotID,
		"app_id":  s.opts.AppID,
		"team":    s.opts.TeamID,
		"text":    m.Text,
		"ts":      m.TS,
		"channel": m.Channel,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	if len(m.Attachments) > 0 {
		out["attachments"] = m.Attachments
	}
	return out
}

func attachmentsParam(p params) json.RawMessage {
	a := p["attachments"]
	if a == "" || a == "null" || a == "[]" {
		return nil
	}
	return json.RawMessage(a)
}

func (s *Server) chatPostMessage(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.postTargetLocked(p["channel"])
	if code != "" {
		return fail(code)
	}
	blocks, code, msgs := checkMessage(p["text"], p["blocks"])
	if code != "" {
		return fail(code, msgs...)
	}
	atts := attachmentsParam(p)
	if p["text"] == "" && noBlocks(blocks) && atts == nil {
		return fail("no_text")
	}
	m := s.persistLocked(c.id, p["thread_ts"], p["text"], blocks, atts, "chat.postMessage")
	return ok(result{"channel": c.id, "ts": m.TS, "message": s.messageJSONLocked(m)})
}

// persistLocked stores a new bot message in a channel's history.
func (s *Server) persistLocked(channelID, threadTS, text string, blocks, atts json.RawMessage, source string) *Message {
	now := s.now()
	m := &Message{
		Channel: channelID, TS: s.newTSLocked(), ThreadTS: threadTS, User: s.opts.BotUserID,
		Text: text, Blocks: blocks, Attachments: atts, Source: source,
	}
	m.History = []MessageVersion{{Text: text, Blocks: blocks, Attachments: atts, Source: source, At: now}}
	s.messages[channelID] = append(s.messages[channelID], m)
	s.notifyLocked()
	return m
}

// editLocked records a new version of a message.
func (s *Server) editLocked(m *Message, text string, blocks, atts json.RawMessage, source string) {
	m.Text, m.Blocks, m.Attachments = text, blocks, atts
	m.History = append(m.History, MessageVersion{Text: text, Blocks: blocks, Attachments: atts, Source: source, At: s.now()})
	s.notifyLocked()
}

func (s *Server) chatUpdate(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.channelLocked(p["channel"])
	if code != "" {
		return fail(code)
	}
	m := s.findMessageLocked(MessageRef{Channel: c.id, TS: p["ts"]})
	if m == nil || m.Deleted {
		return fail("message_not_found")
	}
	if m.User != s.opts.BotUserID {
		return fail("cant_update_message")
	}
	if !p.has("text") && !p.has("blocks") && !p.has("attachments") {
		return fail("no_text")
	}
	text := m.Text
	if p.has("text") {
		text = p["text"]
	}
	blocks := m.Blocks
	if p.has("blocks") {
		var msgs []string
		blocks, code, msgs = checkMessage(text, p["blocks"])
		if code != "" {
			return fail(code, msgs...)
		}
	} else if _, code, _ := checkMessage(text, ""); code != "" {
		return fail(code)
	}
	atts := m.Attachments
	if p.has("attachments") {
		atts = attachmentsParam(p)
	}
	if text == "" && noBlocks(blocks) && atts == nil {
		return fail("no_text")
	}
	s.editLocked(m, text, blocks, atts, "chat.update")
	return ok(result{"channel": c.id, "ts": m.TS, "text": m.Text, "message": s.messageJSONLocked(m)})
}

func (s *Server) chatDelete(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.channelLocked(p["channel"])
	if code != "" {
		return fail(code)
	}
	m := s.findMessageLocked(MessageRef{Channel: c.id, TS: p["ts"]})
	if m == nil || m.Deleted {
		return fail("message_not_found")
	}
	if m.User != s.opts.BotUserID {
		return fail("cant_delete_message")
	}
	m.Deleted = true
	s.notifyLocked()
	return ok(result{"channel": c.id, "ts": m.TS})
}

func (s *Server) chatPostEphemeral(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.postTargetLocked(p["channel"])
	if code != "" {
		return fail(code)
	}
	u := s.users[p["user"]]
	if u == nil {
		return fail("user_not_found")
	}
	if !c.hasMember(u.ID) {
		return fail("user_not_in_channel")
	}
	blocks, code, msgs := checkMessage(p["text"], p["blocks"])
	if code != "" {
		return fail(code, msgs...)
	}
	if p["text"] == "" && noBlocks(blocks) && attachmentsParam(p) == nil {
		return fail("no_text")
	}
	e := s.ephemeralLocked(c.id, u.ID, p["text"], blocks, "chat.postEphemeral")
	return ok(result{"message_ts": e.TS})
}

func (s *Server) ephemeralLocked(channelID, userID, text string, blocks json.RawMessage, source string) *Ephemeral {
	e := &Ephemeral{Channel: channelID, User: userID, TS: s.newTSLocked(), Text: text, Blocks: blocks, Source: source}
	s.ephemerals = append(s.ephemerals, e)
	s.notifyLocked()
	return e
}

func (s *Server) conversationsOpen(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id := p["channel"]; id != "" {
		c := s.channels[id]
		if c == nil {
			return fail("channel_not_found")
		}
		return ok(result{"channel": s.convJSONLocked(c), "no_op": true, "already_open": true})
	}
	users := strings.Split(p["users"], ",")
	if p["users"] == "" {
		return fail("users_list_not_supplied")
	}
	if len(users) != 1 {
		return fail("not_implemented_by_slackfake", "multi-person DMs are not supported by the fake")
	}
	u := s.users[strings.TrimSpace(users[0])]
	switch {
	case u == nil:
		return fail("user_not_found")
	case u.Deleted:
		return fail("user_disabled")
	case u.IsBot:
		return fail("cannot_dm_bot")
	}
	_, existed := s.dms[u.ID]
	c := s.dmLocked(u.ID)
	s.notifyLocked()
	return ok(result{"channel": s.convJSONLocked(c), "no_op": existed, "already_open": existed})
}

func (s *Server) convJSONLocked(c *channel) map[string]any {
	out := map[string]any{"id": c.id, "created": 1700000000, "is_open": true}
	if c.isDM() {
		out["is_im"] = true
		out["user"] = c.dmUser
	} else {
		out["name"] = c.name
		out["is_channel"] = true
		out["is_member"] = c.botMember
	}
	return out
}

func (s *Server) userJSON(u *User) map[string]any {
	offset, label := 0, ""
	if u.TZ != "" {
		if loc, err := time.LoadLocation(u.TZ); err == nil {
			label, offset = s.now().In(loc).Zone()
		}
	}
	profile := map[string]any{
		"real_name":               u.RealName,
		"real_name_normalized":    u.RealName,
		"display_name":            u.Name,
		"display_name_normalized": u.Name,
		"team":                    s.opts.TeamID,
	}
	if u.Email != "" && s.hasScopeLocked("users:read.email") {
		profile["email"] = u.Email // Slack leaves it out without users:read.email
	}
	if u.IsBot {
		profile["bot_id"] = s.opts.BotID
	}
	out := map[string]any{
		"id":        u.ID,
		"team_id":   s.opts.TeamID,
		"name":      u.Name,
		"deleted":   u.Deleted,
		"real_name": u.RealName,
		"tz_label":  label,
		"tz_offset": offset,
		"is_bot":    u.IsBot,
		"profile":   profile,
	}
	if u.TZ != "" {
		out["tz"] = u.TZ
	}
	return out
}

func (s *Server) usersInfo(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[p["user"]]
	if u == nil {
		return fail("user_not_found")
	}
	return ok(result{"user": s.userJSON(u)})
}

func (s *Server) usersLookupByEmail(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	email := strings.TrimSpace(p["email"])
	if email == "" {
		return fail("invalid_arguments", "[ERROR] missing required field: email")
	}
	for _, u := range s.users {
		if u.Email != "" && strings.EqualFold(u.Email, email) {
			return ok(result{"user": s.userJSON(u)})
		}
	}
	return fail("users_not_found")
}

func (s *Server) usergroupsUsersList(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, found := s.groups[p["usergroup"]]
	if !found {
		return fail("no_such_subteam")
	}
	users := []string{}
	users = append(users, members...)
	return ok(result{"users": users})
}
