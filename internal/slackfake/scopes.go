package slackfake

import (
	"slices"
	"strings"
)

// DefaultScopes are the bot token scopes the fake grants when Options.Scopes is nil: every scope
// a method the fake implements can ask for, which is also the set tapbot's manifest.yaml
// requests. Tests that need a token without some scope pass a smaller set.
var DefaultScopes = []string{
	"commands",
	"chat:write",
	"im:write",
	"users:read",
	"users:read.email",
	"usergroups:read",
	"channels:read",
	"groups:read",
}

// appTokenScopes are the app-level token's scopes: socket mode needs only connections:write, and
// apps.connections.open refuses an app token without it.
var appTokenScopes = []string{"connections:write"}

// methodScopes lists, per Web API method, the scopes of which a bot token needs at least one, as
// Slack's method documentation says. Methods not listed need none (auth.test, views.*), or
// depend on their arguments (conversations.info: see scopesForLocked).
var methodScopes = map[string][]string{
	"chat.postMessage":      {"chat:write"},
	"chat.update":           {"chat:write"},
	"chat.postEphemeral":    {"chat:write"},
	"chat.delete":           {"chat:write"},
	"conversations.open":    {"im:write", "mpim:write", "channels:manage", "groups:write"},
	"users.info":            {"users:read"},
	"users.lookupByEmail":   {"users:read.email"},
	"usergroups.users.list": {"usergroups:read"},
}

// SetScopes replaces the scopes granted to the bot token, as reinstalling the app with a
// different manifest would. Calls needing a scope the token lacks are refused with
// missing_scope, and the X-OAuth-Scopes header of every answer lists the new set.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = slices.Clone(scopes)
	s.notifyLocked()
}

// Scopes returns the scopes granted to the bot token.
func (s *Server) Scopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.scopes)
}

// SetChannelPrivate marks a channel private or public. Slack answers conversations.info about a
// private channel only to members (channel_not_found otherwise) and asks for groups:read rather
// than channels:read. AddChannel makes "G..." channels private and others public.
func (s *Server) SetChannelPrivate(channelID string, private bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channels[channelID]; c != nil {
		c.private = private
	}
	s.notifyLocked()
}

func (s *Server) hasScopeLocked(scope string) bool { return slices.Contains(s.scopes, scope) }

// scopesForLocked returns the scopes (any one suffices) a bot-token call of method with p needs.
func (s *Server) scopesForLocked(method string, p params) []string {
	if method != "conversations.info" {
		return methodScopes[method]
	}
	c := s.channels[p["channel"]]
	switch {
	case c == nil:
		return nil // answered channel_not_found whatever the scopes
	case c.isDM():
		return []string{"im:read"}
	case c.private:
		return []string{"groups:read"}
	}
	return []string{"channels:read"}
}

// checkScopes answers missing_scope, with Slack's needed and provided fields, when the bot token
// has none of the scopes the call needs. It sets the X-OAuth-Scopes and X-Accepted-OAuth-Scopes
// headers, which Slack puts on every authenticated Web API answer.
func (s *Server) checkScopes(method string, p params, setHeader func(k, v string)) result {
	if method == "apps.connections.open" {
		setHeader("X-OAuth-Scopes", strings.Join(appTokenScopes, ","))
		setHeader("X-Accepted-OAuth-Scopes", "connections:write")
		return nil
	}
	s.mu.Lock()
	granted := strings.Join(s.scopes, ",")
	needed := s.scopesForLocked(method, p)
	found := len(needed) == 0
	for _, sc := range needed {
		found = found || s.hasScopeLocked(sc)
	}
	s.mu.Unlock()
	setHeader("X-OAuth-Scopes", granted)
	setHeader("X-Accepted-OAuth-Scopes", strings.Join(needed, ","))
	if found {
		return nil
	}
	r := fail("missing_scope")
	r["needed"] = needed[0]
	r["provided"] = granted
	return r
}

// conversationsInfo answers like Slack: a public channel is described to any token with
// channels:read, is_member saying whether the bot is in it; a private channel the bot is not in
// does not exist as far as the bot can tell.
func (s *Server) conversationsInfo(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil || (c.private && !c.botMember) {
		return fail("channel_not_found")
	}
	out := s.convJSONLocked(c)
	if !c.isDM() {
		out["is_private"] = c.private
		out["is_group"] = c.private
		out["is_channel"] = !c.private
		if len(c.members) > 0 {
			out["num_members"] = len(c.members)
		}
	}
	return ok(result{"channel": out})
}
