package slackfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// exchangeTriggerLocked checks a trigger_id as views.open/views.push do.
// It does not consume the trigger; the caller does once the call succeeds.
func (s *Server) exchangeTriggerLocked(id string) (*trigger, string) {
	if id == "" {
		return nil, "invalid_trigger_id"
	}
	t := s.triggers[id]
	switch {
	case t == nil:
		return nil, "invalid_trigger_id"
	case t.used:
		return nil, "exchanged_trigger_id"
	case s.now().Sub(t.issued) > TriggerTTL:
		return nil, "expired_trigger_id"
	}
	return t, ""
}

func (s *Server) externalIDTakenLocked(ext, except string) bool {
	if ext == "" {
		return false
	}
	for _, v := range s.views {
		if v.open && v.externalID == ext && v.id != except {
			return true
		}
	}
	return false
}

// newViewLocked creates a view from a validated modal definition.
func (s *Server) newViewLocked(user string, def map[string]any, rootID, previousID string) *viewState {
	v := &viewState{id: s.newIDLocked("V"), user: user, open: true, previousID: previousID}
	v.rootID = rootID
	if v.rootID == "" {
		v.rootID = v.id
	}
	s.setViewDefLocked(v, def)
	s.views[v.id] = v
	return v
}

// setViewDefLocked replaces a view's content and rotates its hash, as every
// update does.
func (s *Server) setViewDefLocked(v *viewState, def map[string]any) {
	v.hash = fmt.Sprintf("%d.%s", s.now().Unix(), randID(8))
	v.externalID = str(def["external_id"])
	var prev any
	if v.previousID != "" {
		prev = v.previousID
	}
	boolOf := func(k string) bool { b, _ := def[k].(bool); return b }
	v.obj = map[string]any{
		"id":                    v.id,
		"team_id":               s.opts.TeamID,
		"type":                  "modal",
		"title":                 def["title"],
		"close":                 def["close"],
		"submit":                def["submit"],
		"blocks":                def["blocks"],
		"private_metadata":      str(def["private_metadata"]),
		"callback_id":           str(def["callback_id"]),
		"external_id":           v.externalID,
		"state":                 map[string]any{"values": map[string]any{}},
		"hash":                  v.hash,
		"clear_on_close":        boolOf("clear_on_close"),
		"notify_on_close":       boolOf("notify_on_close"),
		"root_view_id":          v.rootID,
		"previous_view_id":      prev,
		"app_id":                s.opts.AppID,
		"app_installed_team_id": s.opts.TeamID,
		"bot_id":                s.opts.BotID,
	}
}

func (s *Server) viewRecordLocked(v *viewState, event string) View {
	title := ""
	if t, ok := v.obj["title"].(map[string]any); ok {
		title = str(t["text"])
	}
	return View{
		ID: v.id, UserID: v.user, Event: event, CallbackID: str(v.obj["callback_id"]),
		Title: title, JSON: mustJSON(v.obj), At: s.now(),
	}
}

func (s *Server) logViewLocked(v *viewState, event string) {
	s.viewLog = append(s.viewLog, s.viewRecordLocked(v, event))
	s.notifyLocked()
}

// closeStackLocked closes every view of user's modal.
func (s *Server) closeStackLocked(user, event string) {
	for _, id := range slices.Backward(s.stacks[user]) {
		if v := s.views[id]; v != nil {
			v.open = false
			s.logViewLocked(v, event)
		}
	}
	delete(s.stacks, user)
	s.notifyLocked()
}

// popViewLocked closes the top view of user's modal.
func (s *Server) popViewLocked(user, event string) {
	st := s.stacks[user]
	if len(st) == 0 {
		return
	}
	if v := s.views[st[len(st)-1]]; v != nil {
		v.open = false
		s.logViewLocked(v, event)
	}
	if len(st) == 1 {
		delete(s.stacks, user)
	} else {
		s.stacks[user] = st[:len(st)-1]
	}
	s.notifyLocked()
}

// topViewLocked returns the view user currently sees.
func (s *Server) topViewLocked(user string) *viewState {
	st := s.stacks[user]
	if len(st) == 0 {
		return nil
	}
	return s.views[st[len(st)-1]]
}

func viewResult(v *viewState) result {
	return ok(result{"view": mustJSON(v.obj)})
}

func (s *Server) viewsOpen(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, code := s.exchangeTriggerLocked(p["trigger_id"])
	if code != "" {
		return fail(code)
	}
	def, code, msgs := checkView(p["view"])
	if code != "" {
		return fail(code, msgs...)
	}
	if s.externalIDTakenLocked(str(def["external_id"]), "") {
		return fail("duplicate_external_id")
	}
	t.used = true
	if len(s.stacks[t.user]) > 0 {
		s.closeStackLocked(t.user, "closed")
	}
	v := s.newViewLocked(t.user, def, "", "")
	s.stacks[t.user] = []string{v.id}
	s.logViewLocked(v, "open")
	return viewResult(v)
}

func (s *Server) viewsPush(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, code := s.exchangeTriggerLocked(p["trigger_id"])
	if code != "" {
		return fail(code)
	}
	// Slack only lets an app push onto a modal the trigger came from.
	top := s.topViewLocked(t.user)
	if t.viewID == "" || top == nil || !slices.Contains(s.stacks[t.user], t.viewID) {
		return fail("invalid_trigger_id", "[ERROR] views.push needs a trigger_id from an interaction inside an open modal [json-pointer:/trigger_id]")
	}
	def, code, msgs := checkView(p["view"])
	if code != "" {
		return fail(code, msgs...)
	}
	if len(s.stacks[t.user]) >= MaxViewStack {
		return fail("push_limit_reached")
	}
	if s.externalIDTakenLocked(str(def["external_id"]), "") {
		return fail("duplicate_external_id")
	}
	t.used = true
	v := s.newViewLocked(t.user, def, top.rootID, top.id)
	s.stacks[t.user] = append(s.stacks[t.user], v.id)
	s.logViewLocked(v, "push")
	return viewResult(v)
}

func (s *Server) viewsUpdate(p params) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v *viewState
	if id := p["view_id"]; id != "" {
		v = s.views[id]
	} else if ext := p["external_id"]; ext != "" {
		for _, cand := range s.views {
			if cand.open && cand.externalID == ext {
				v = cand
			}
		}
	} else {
		return fail("invalid_arguments", "[ERROR] one of view_id or external_id is required [json-pointer:/view_id]")
	}
	if v == nil || !v.open {
		return fail("not_found")
	}
	if h := p["hash"]; h != "" && h != v.hash {
		return fail("hash_conflict")
	}
	def, code, msgs := checkView(p["view"])
	if code != "" {
		return fail(code, msgs...)
	}
	if s.externalIDTakenLocked(str(def["external_id"]), v.id) {
		return fail("duplicate_external_id")
	}
	s.setViewDefLocked(v, def)
	s.logViewLocked(v, "update")
	return viewResult(v)
}

// InputValue is what a user entered into one input element, in the shape
// Slack puts into view.state.values (e.g. {"type":"plain_text_input",
// "value":"hi"}). Build it with TextInput, SelectOption and friends; the
// "type" is filled in from the view's element.
type InputValue map[string]any

// TextInput is text typed into a plain_text_input (or email/url/number input).
func TextInput(v string) InputValue { return InputValue{"value": v} }

// SelectOption is an option picked by value in a static_select or
// radio_buttons element; the option's text is filled in from the view.
func SelectOption(value string) InputValue {
	return InputValue{"selected_option": map[string]any{"value": value}}
}

// SelectOptions are options picked by value in a multi_static_select or
// checkboxes element.
func SelectOptions(values ...string) InputValue {
	opts := make([]any, len(values))
	for i, v := range values {
		opts[i] = map[string]any{"value": v}
	}
	return InputValue{"selected_options": opts}
}

// SelectUser is a user picked in a users_select.
func SelectUser(userID string) InputValue { return InputValue{"selected_user": userID} }

// SelectUsers are users picked in a multi_users_select.
func SelectUsers(userIDs ...string) InputValue {
	return InputValue{"selected_users": slices.Clone(userIDs)}
}

// SelectConversation is a conversation picked in a conversations_select.
func SelectConversation(id string) InputValue { return InputValue{"selected_conversation": id} }

// SelectChannel is a channel picked in a channels_select.
func SelectChannel(id string) InputValue { return InputValue{"selected_channel": id} }

// PickDate is a date ("2006-01-02") picked in a datepicker.
func PickDate(date string) InputValue { return InputValue{"selected_date": date} }

// PickTime is a time ("15:04") picked in a timepicker. Slack reports the picker's timezone
// with it when the view set one.
func PickTime(hhmm string) InputValue { return InputValue{"selected_time": hhmm} }

// PickDateTime is a moment picked in a datetimepicker, as the Unix time Slack reports.
func PickDateTime(unix int64) InputValue { return InputValue{"selected_date_time": unix} }

// emptyInput is the state Slack reports for an input the user left empty.
func emptyInput(typ string) InputValue {
	switch typ {
	case "static_select", "external_select", "radio_buttons":
		return InputValue{"type": typ, "selected_option": nil}
	case "multi_static_select", "multi_external_select", "checkboxes":
		return InputValue{"type": typ, "selected_options": []any{}}
	case "users_select":
		return InputValue{"type": typ, "selected_user": nil}
	case "multi_users_select":
		return InputValue{"type": typ, "selected_users": []any{}}
	case "conversations_select":
		return InputValue{"type": typ, "selected_conversation": nil}
	case "multi_conversations_select":
		return InputValue{"type": typ, "selected_conversations": []any{}}
	case "channels_select":
		return InputValue{"type": typ, "selected_channel": nil}
	case "multi_channels_select":
		return InputValue{"type": typ, "selected_channels": []any{}}
	case "datepicker":
		return InputValue{"type": typ, "selected_date": nil}
	case "timepicker":
		return InputValue{"type": typ, "selected_time": nil}
	case "datetimepicker":
		return InputValue{"type": typ, "selected_date_time": nil}
	}
	return InputValue{"type": typ, "value": nil}
}

func inputFilled(v InputValue) bool {
	for k, x := range v {
		if k == "type" {
			continue
		}
		switch y := x.(type) {
		case nil:
		case string:
			if y != "" {
				return true
			}
		case []any:
			if len(y) > 0 {
				return true
			}
		case []string:
			if len(y) > 0 {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// buildState turns submitted values into view.state.values, refusing what
// a user could not have entered in this view.
func buildState(view map[string]any, values map[string]map[string]InputValue) (map[string]any, error) {
	blocks, _ := view["blocks"].([]any)
	state := map[string]any{}
	used := map[string]bool{}
	for _, b := range blocks {
		bm, _ := b.(map[string]any)
		if str(bm["type"]) != "input" {
			continue
		}
		blockID := str(bm["block_id"])
		el, _ := bm["element"].(map[string]any)
		actionID, typ := str(el["action_id"]), str(el["type"])
		optional, _ := bm["optional"].(bool)
		in, given := values[blockID][actionID]
		if !given {
			// An input the person did not touch submits what the view showed in it.
			in, given = initialInput(el)
		}
		used[blockID] = true
		var val InputValue
		if given {
			val = maps.Clone(in)
			if t, ok := val["type"]; ok && t != typ {
				return nil, fmt.Errorf("input %s/%s is a %s, not a %v", blockID, actionID, typ, t)
			}
			val["type"] = typ
			if err := fillOptions(el, val); err != nil {
				return nil, fmt.Errorf("input %s/%s: %w", blockID, actionID, err)
			}
			if tz := str(el["timezone"]); typ == "timepicker" && tz != "" && inputFilled(val) {
				val["timezone"] = tz
			}
			if maxLen, ok := el["max_length"].(json.Number); ok {
				if n, _ := maxLen.Int64(); n > 0 && int64(len([]rune(str(val["value"])))) > n {
					return nil, fmt.Errorf("input %s/%s: value longer than max_length %d", blockID, actionID, n)
				}
			}
		}
		if !given || !inputFilled(val) {
			if !optional {
				return nil, fmt.Errorf("required input %s/%s is empty; Slack would not submit the view", blockID, actionID)
			}
			val = emptyInput(typ)
		}
		state[blockID] = map[string]any{actionID: val}
	}
	for blockID, acts := range values {
		if !used[blockID] {
			return nil, fmt.Errorf("view has no input block %q", blockID)
		}
		for actionID := range acts {
			if _, ok := state[blockID].(map[string]any)[actionID]; !ok {
				return nil, fmt.Errorf("input block %q has no element with action_id %q", blockID, actionID)
			}
		}
	}
	return state, nil
}

// initialInput is what Slack submits for an untouched input that shows an initial value.
func initialInput(el map[string]any) (InputValue, bool) {
	for from, to := range map[string]string{
		"initial_option": "selected_option", "initial_options": "selected_options", "initial_user": "selected_user",
		"initial_users": "selected_users", "initial_conversation": "selected_conversation",
		"initial_conversations": "selected_conversations", "initial_channel": "selected_channel",
		"initial_channels": "selected_channels", "initial_date": "selected_date", "initial_time": "selected_time",
		"initial_date_time": "selected_date_time", "initial_value": "value",
	} {
		if v, ok := el[from]; ok && v != nil {
			return InputValue{to: v}, true
		}
	}
	return nil, false
}

// fillOptions replaces picked option values by the element's full option
// objects, refusing options the element does not offer.
func fillOptions(el map[string]any, val InputValue) error {
	var all []any
	if opts, ok := el["options"].([]any); ok {
		all = append(all, opts...)
	}
	if groups, ok := el["option_groups"].([]any); ok {
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			opts, _ := gm["options"].([]any)
			all = append(all, opts...)
		}
	}
	find := func(o any) (any, error) {
		om, _ := o.(map[string]any)
		want := str(om["value"])
		for _, cand := range all {
			if cm, _ := cand.(map[string]any); str(cm["value"]) == want {
				return cand, nil
			}
		}
		return nil, fmt.Errorf("element offers no option with value %q", want)
	}
	if o, ok := val["selected_option"]; ok && o != nil {
		full, err := find(o)
		if err != nil {
			return err
		}
		val["selected_option"] = full
	}
	if os, ok := val["selected_options"].([]any); ok {
		out := make([]any, len(os))
		for i, o := range os {
			full, err := find(o)
			if err != nil {
				return err
			}
			out[i] = full
		}
		val["selected_options"] = out
	}
	return nil
}
