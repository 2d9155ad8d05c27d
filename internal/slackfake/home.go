package slackfake

import (
	"context"
	"fmt"
)

// The Home tab of App Home: views.publish, the app_home_opened event and clicks in a published
// Home tab. Slack keeps one Home view per user; publishing replaces it (same view ID, new hash).

func init() { apiMethods["views.publish"] = (*Server).viewsPublish }

// SetHomeTab enables or disables the app's Home tab, as the app's App Home settings (or the
// manifest's features.app_home.home_tab_enabled) do. It is enabled unless disabled here;
// views.publish then answers not_enabled.
func (s *Server) SetHomeTab(enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.homeOff = !enabled
	s.notifyLocked()
}

// HomeView returns the Home tab currently published for user (Event "publish").
func (s *Server) HomeView(userID string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.homes[userID]
	if v == nil {
		return View{}, false
	}
	return s.viewRecordLocked(v, "publish"), true
}

// HomeViews returns every Home tab published for user, oldest first.
func (s *Server) HomeViews(userID string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, v := range s.homeLog {
		if v.UserID == userID {
			out = append(out, v)
		}
	}
	return out
}

// checkHomeView validates a Home tab view as views.publish does.
func checkHomeView(raw string) (map[string]any, string, []string) {
	if len(raw) > maxViewBytes {
		return nil, "view_too_large", nil
	}
	m, ok := decodeJSON([]byte(raw)).(map[string]any)
	if !ok {
		return nil, "invalid_arguments", []string{"[ERROR] must be an object [json-pointer:/view]"}
	}
	v := &validator{modal: true} // Home tabs take the blocks modals take
	const p = "/view"
	if str(m["type"]) != "home" {
		v.add(p+"/type", "must be a valid enum value")
	}
	for _, k := range []string{"title", "close", "submit"} {
		if _, ok := m[k]; ok {
			v.add(p+"/"+k, "not allowed in a home view")
		}
	}
	blocks, _ := v.viewFields(m, p)
	if len(v.errs) > 0 {
		return nil, "invalid_arguments", v.errs
	}
	list, _ := blocks.([]any)
	assignIDs(list)
	return m, "", nil
}

func (s *Server) viewsPublish(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	user := p["user_id"]
	if u := s.users[user]; u == nil || u.Deleted || u.IsBot {
		return fail("invalid_arguments", "[ERROR] no such user [json-pointer:/user_id]")
	}
	if s.homeOff {
		return fail("not_enabled")
	}
	def, code, msgs := checkHomeView(p["view"])
	if code != "" {
		return fail(code, msgs...)
	}
	v := s.homes[user]
	if h := p["hash"]; h != "" && v != nil && h != v.hash {
		return fail("hash_conflict")
	}
	if v == nil {
		v = &viewState{id: s.newIDLocked("V"), user: user, open: true}
		v.rootID = v.id
		if s.homes == nil {
			s.homes = map[string]*viewState{}
		}
		s.homes[user] = v
	}
	v.hash = fmt.Sprintf("%d.%s", s.now().Unix(), randID(8))
	v.externalID = str(def["external_id"])
	v.obj = map[string]any{
		"id":                    v.id,
		"team_id":               s.opts.TeamID,
		"type":                  "home",
		"blocks":                def["blocks"],
		"private_metadata":      str(def["private_metadata"]),
		"callback_id":           str(def["callback_id"]),
		"external_id":           v.externalID,
		"state":                 map[string]any{"values": map[string]any{}},
		"hash":                  v.hash,
		"title":                 map[string]any{"type": "plain_text", "text": "View Title"},
		"clear_on_close":        false,
		"notify_on_close":       false,
		"close":                 nil,
		"submit":                nil,
		"root_view_id":          v.rootID,
		"previous_view_id":      nil,
		"app_id":                s.opts.AppID,
		"app_installed_team_id": s.opts.TeamID,
		"bot_id":                s.opts.BotID,
	}
	s.homeLog = append(s.homeLog, s.viewRecordLocked(v, "publish"))
	s.notifyLocked()
	return viewResult(v)
}

// OpenAppHome has userID open the app's App Home on tab "home" or "messages" and waits for the
// bot's ack of the app_home_opened event. As in Slack, the event carries the Home view last
// published for the user, if any.
func (s *Server) OpenAppHome(ctx context.Context, userID, tab string) (Ack, error) {
	if tab != "home" && tab != "messages" {
		return Ack{}, fmt.Errorf("slackfake: App Home has no tab %q", tab)
	}
	s.mu.Lock()
	u := s.users[userID]
	if u == nil || u.Deleted {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: unknown or deactivated user %s", userID)
	}
	event := map[string]any{"type": "app_home_opened", "user": userID, "channel": s.dmLocked(userID).id, "tab": tab}
	if v := s.homes[userID]; v != nil {
		event["view"] = v.obj
	}
	s.mu.Unlock()
	return s.SendEvent(ctx, event)
}

// ClickHomeButton has userID click the button with actionID and value in the Home tab published
// for them and waits for the ack. It refuses a button the Home tab does not show. The payload is
// Slack's block_actions from a view container, carrying the whole Home view.
func (s *Server) ClickHomeButton(ctx context.Context, userID, actionID, value string) (Ack, error) {
	s.mu.Lock()
	v := s.homes[userID]
	if v == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: no Home tab was published for %s", userID)
	}
	btn, blockID := findButton(mustJSON(v.obj["blocks"]), actionID, value)
	if btn == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: %s's Home tab shows no button with action_id %q and value %q (buttons: %+v)",
			userID, actionID, value, BlocksButtons(mustJSON(v.obj["blocks"])))
	}
	view := make(map[string]any, len(v.obj))
	for k, x := range v.obj {
		view[k] = x
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  s.userObjLocked(userID),
		"api_app_id":            s.opts.AppID,
		"token":                 verificationToken,
		"container":             map[string]any{"type": "view", "view_id": v.id},
		"trigger_id":            s.newTriggerLocked(userID, ""),
		"team":                  s.teamObj(),
		"enterprise":            nil,
		"is_enterprise_install": false,
		"view":                  view,
		"actions":               []any{buttonAction(btn, blockID, s.newTSLocked())},
	}
	env := s.newEnvelopeLocked("interactive", "block_actions", false, payload)
	env.user, env.viewID = userID, v.id
	s.mu.Unlock()
	return s.deliver(ctx, env, 0)
}

// HomeButtons lists the buttons of user's published Home tab.
func (s *Server) HomeButtons(userID string) []Button {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.homes[userID]
	if v == nil {
		return nil
	}
	return BlocksButtons(mustJSON(v.obj["blocks"]))
}
