package slackfake

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Slack's Block Kit and message limits, from the Block Kit reference.
const (
	maxMessageText    = 40000
	maxMessageBlocks  = 50
	maxModalBlocks    = 100
	maxViewBytes      = 250 * 1024
	maxSectionText    = 3000
	maxSectionFields  = 10
	maxFieldText      = 2000
	maxHeaderText     = 150
	maxButtonText     = 75
	maxButtonValue    = 2000
	maxURL            = 3000
	maxActionID       = 255
	maxBlockID        = 255
	maxContextElems   = 10
	maxActionsElems   = 25
	maxModalTitle     = 24
	maxModalButton    = 24
	maxCallbackID     = 255
	maxPrivateMeta    = 3000
	maxExternalID     = 255
	maxPlaceholder    = 150
	maxOptionText     = 75
	maxOptionValue    = 150
	maxSelectOptions  = 100
	maxChoiceOptions  = 10
	maxOverflowOpts   = 5
	maxLabel          = 2000
	maxAltText        = 2000
	maxInputLength    = 3000
	maxMarkdownText   = 12000
	maxContextText    = 3000
	maxConfirmTitle   = 100
	maxConfirmText    = 300
	maxConfirmButtons = 30
)

var (
	selectElements = []string{
		"static_select", "external_select", "users_select", "conversations_select", "channels_select",
		"multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select", "multi_channels_select",
	}
	sectionAccessories = set(append([]string{"button", "checkboxes", "datepicker", "image", "overflow", "radio_buttons", "timepicker", "workflow_button"}, selectElements...)...)
	actionsElements    = set(append([]string{"button", "checkboxes", "datepicker", "datetimepicker", "overflow", "radio_buttons", "rich_text_input", "timepicker", "workflow_button"}, selectElements...)...)
	inputElements      = set(append([]string{"checkboxes", "datepicker", "datetimepicker", "email_text_input", "file_input", "number_input", "plain_text_input", "radio_buttons", "rich_text_input", "timepicker", "url_text_input"}, selectElements...)...)
	contextElements    = set("image", "plain_text", "mrkdwn")
)

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}

// validator collects Slack-style error messages:
// "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]".
type validator struct {
	modal bool
	errs  []string
}

func (v *validator) add(ptr, msg string) {
	v.errs = append(v.errs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", msg, ptr))
}

func (v *validator) str(m map[string]any, key, ptr string, max int, required bool) (string, bool) {
	x, ok := m[key]
	if !ok || x == nil {
		if required {
			v.add(ptr, "missing required field: "+key)
		}
		return "", false
	}
	s, ok := x.(string)
	if !ok {
		v.add(ptr+"/"+key, "must be a string")
		return "", false
	}
	if n := utf8.RuneCountInString(s); n > max {
		v.add(ptr+"/"+key, fmt.Sprintf("must be less than %d characters", max+1))
	}
	return s, true
}

// text checks a text object at m[key].
func (v *validator) text(m map[string]any, key, ptr string, plainOnly bool, max int, required bool) {
	x, ok := m[key]
	if !ok || x == nil {
		if required {
			v.add(ptr, "missing required field: "+key)
		}
		return
	}
	v.textObj(x, ptr+"/"+key, plainOnly, max)
}

func (v *validator) textObj(x any, ptr string, plainOnly bool, max int) {
	o, ok := x.(map[string]any)
	if !ok {
		v.add(ptr, "must be an object")
		return
	}
	switch t := str(o["type"]); {
	case t == "plain_text":
	case t == "mrkdwn" && !plainOnly:
	case t == "mrkdwn":
		v.add(ptr+"/type", "must be plain_text")
	default:
		v.add(ptr+"/type", "must be a valid enum value")
	}
	s, ok := o["text"].(string)
	if !ok {
		v.add(ptr, "missing required field: text")
		return
	}
	n := utf8.RuneCountInString(s)
	if n == 0 {
		v.add(ptr+"/text", "must be more than 0 characters")
	}
	if n > max {
		v.add(ptr+"/text", fmt.Sprintf("must be less than %d characters", max+1))
	}
}

func (v *validator) array(m map[string]any, key, ptr string, min, max int) []any {
	x, ok := m[key]
	if !ok || x == nil {
		if min > 0 {
			v.add(ptr, "missing required field: "+key)
		}
		return nil
	}
	list, ok := x.([]any)
	if !ok {
		v.add(ptr+"/"+key, "must be an array")
		return nil
	}
	if len(list) < min {
		v.add(ptr+"/"+key, fmt.Sprintf("must provide at least %d items", min))
	}
	if len(list) > max {
		v.add(ptr+"/"+key, fmt.Sprintf("no more than %d items allowed", max))
	}
	return list
}

// blocks checks a decoded blocks array.
func (v *validator) blocks(x any, ptr string, max int) {
	list, ok := x.([]any)
	if !ok {
		v.add(ptr, "must be an array")
		return
	}
	if len(list) > max {
		v.add(ptr, fmt.Sprintf("no more than %d items allowed", max))
	}
	seen := map[string]bool{}
	for i, b := range list {
		v.block(b, fmt.Sprintf("%s/%d", ptr, i), seen)
	}
}

func (v *validator) block(b any, ptr string, seen map[string]bool) {
	m, ok := b.(map[string]any)
	if !ok {
		v.add(ptr, "must be an object")
		return
	}
	typ, ok := m["type"].(string)
	if !ok {
		v.add(ptr, "missing required field: type")
		return
	}
	if id, ok := v.str(m, "block_id", ptr, maxBlockID, false); ok {
		if id == "" {
			v.add(ptr+"/block_id", "must be more than 0 characters")
		}
		if seen[id] {
			v.add(ptr+"/block_id", "duplicate block_id")
		}
		seen[id] = true
	}
	actionIDs := map[string]bool{}
	switch typ {
	case "section":
		_, hasText := m["text"]
		_, hasFields := m["fields"]
		if !hasText && !hasFields {
			v.add(ptr, "must provide either text or fields")
		}
		v.text(m, "text", ptr, false, maxSectionText, false)
		for i, f := range v.array(m, "fields", ptr, 0, maxSectionFields) {
			v.textObj(f, fmt.Sprintf("%s/fields/%d", ptr, i), false, maxFieldText)
		}
		if acc, ok := m["accessory"]; ok {
			v.element(acc, ptr+"/accessory", sectionAccessories, actionIDs)
		}
	case "header":
		v.text(m, "text", ptr, true, maxHeaderText, true)
	case "divider":
	case "context":
		for i, e := range v.array(m, "elements", ptr, 1, maxContextElems) {
			p := fmt.Sprintf("%s/elements/%d", ptr, i)
			em, ok := e.(map[string]any)
			if !ok {
				v.add(p, "must be an object")
				continue
			}
			switch t := str(em["type"]); {
			case !contextElements[t]:
				v.add(p+"/type", "must be a valid enum value")
			case t == "image":
				v.image(em, p)
			default:
				v.textObj(em, p, false, maxContextText)
			}
		}
	case "actions":
		for i, e := range v.array(m, "elements", ptr, 1, maxActionsElems) {
			v.element(e, fmt.Sprintf("%s/elements/%d", ptr, i), actionsElements, actionIDs)
		}
	case "input":
		v.text(m, "label", ptr, true, maxLabel, true)
		v.text(m, "hint", ptr, true, maxLabel, false)
		if el, ok := m["element"]; ok && el != nil {
			v.element(el, ptr+"/element", inputElements, actionIDs)
		} else {
			v.add(ptr, "missing required field: element")
		}
	case "image":
		v.image(m, ptr)
		v.text(m, "title", ptr, true, maxAltText, false)
	case "rich_text":
		v.array(m, "elements", ptr, 1, 1<<30)
	case "markdown":
		if v.modal {
			v.add(ptr+"/type", "must be a valid enum value")
			return
		}
		if s, ok := v.str(m, "text", ptr, maxMarkdownText, true); ok && s == "" {
			v.add(ptr+"/text", "must be more than 0 characters")
		}
	default:
		v.add(ptr+"/type", "must be a valid enum value")
	}
}

func (v *validator) image(m map[string]any, ptr string) {
	if _, ok := m["slack_file"]; !ok {
		v.str(m, "image_url", ptr, maxURL, true)
	}
	v.str(m, "alt_text", ptr, maxAltText, true)
}

func (v *validator) element(x any, ptr string, allowed map[string]bool, actionIDs map[string]bool) {
	m, ok := x.(map[string]any)
	if !ok {
		v.add(ptr, "must be an object")
		return
	}
	typ := str(m["type"])
	if !allowed[typ] {
		v.add(ptr+"/type", "must be a valid enum value")
		return
	}
	if id, ok := v.str(m, "action_id", ptr, maxActionID, false); ok {
		if id == "" {
			v.add(ptr+"/action_id", "must be more than 0 characters")
		}
		if actionIDs[id] {
			v.add(ptr+"/action_id", "duplicate action_id")
		}
		actionIDs[id] = true
	}
	if c, ok := m["confirm"]; ok {
		v.confirm(c, ptr+"/confirm")
	}
	switch typ {
	case "button":
		v.text(m, "text", ptr, true, maxButtonText, true)
		v.str(m, "value", ptr, maxButtonValue, false)
		v.str(m, "url", ptr, maxURL, false)
		if st, ok := v.str(m, "style", ptr, 10, false); ok && st != "primary" && st != "danger" {
			v.add(ptr+"/style", "must be a valid enum value")
		}
	case "static_select", "multi_static_select":
		v.text(m, "placeholder", ptr, true, maxPlaceholder, false)
		_, hasOpts := m["options"]
		groups := v.array(m, "option_groups", ptr, 0, maxSelectOptions)
		if !hasOpts && groups == nil {
			v.add(ptr, "must provide either options or option_groups")
		}
		for i, o := range v.array(m, "options", ptr, 0, maxSelectOptions) {
			v.option(o, fmt.Sprintf("%s/options/%d", ptr, i), true)
		}
		for i, g := range groups {
			gp := fmt.Sprintf("%s/option_groups/%d", ptr, i)
			gm, ok := g.(map[string]any)
			if !ok {
				v.add(gp, "must be an object")
				continue
			}
			v.text(gm, "label", gp, true, maxOptionText, true)
			for j, o := range v.array(gm, "options", gp, 1, maxSelectOptions) {
				v.option(o, fmt.Sprintf("%s/options/%d", gp, j), true)
			}
		}
	case "overflow":
		for i, o := range v.array(m, "options", ptr, 1, maxOverflowOpts) {
			v.option(o, fmt.Sprintf("%s/options/%d", ptr, i), true)
		}
	case "checkboxes", "radio_buttons":
		for i, o := range v.array(m, "options", ptr, 1, maxChoiceOptions) {
			v.option(o, fmt.Sprintf("%s/options/%d", ptr, i), false)
		}
	case "plain_text_input", "email_text_input", "url_text_input", "number_input":
		v.text(m, "placeholder", ptr, true, maxPlaceholder, false)
		v.str(m, "initial_value", ptr, maxInputLength, false)
		for _, k := range []string{"min_length", "max_length"} {
			if n, ok := m[k].(json.Number); ok {
				if i, err := n.Int64(); err != nil || i < 0 || i > maxInputLength {
					v.add(ptr+"/"+k, fmt.Sprintf("must be between 0 and %d", maxInputLength))
				}
			}
		}
	case "image":
		v.image(m, ptr)
	default:
		v.text(m, "placeholder", ptr, true, maxPlaceholder, false)
	}
}

func (v *validator) option(x any, ptr string, plainOnly bool) {
	m, ok := x.(map[string]any)
	if !ok {
		v.add(ptr, "must be an object")
		return
	}
	v.text(m, "text", ptr, plainOnly, maxOptionText, true)
	v.text(m, "description", ptr, plainOnly, maxOptionText, false)
	v.str(m, "value", ptr, maxOptionValue, false)
}

func (v *validator) confirm(x any, ptr string) {
	m, ok := x.(map[string]any)
	if !ok {
		v.add(ptr, "must be an object")
		return
	}
	v.text(m, "title", ptr, true, maxConfirmTitle, true)
	v.text(m, "text", ptr, false, maxConfirmText, true)
	v.text(m, "confirm", ptr, true, maxConfirmButtons, true)
	v.text(m, "deny", ptr, true, maxConfirmButtons, true)
}

// checkMessage validates a message's text and blocks as chat.postMessage,
// chat.update, chat.postEphemeral and response_url do. blocksRaw is the
// blocks parameter as sent ("" when absent). It returns the blocks as Slack
// stores them (block_id/action_id filled in), or Slack's error code and
// detail messages.
func checkMessage(text, blocksRaw string) (json.RawMessage, string, []string) {
	if utf8.RuneCountInString(text) > maxMessageText {
		return nil, "msg_too_long", nil
	}
	if blocksRaw == "" || blocksRaw == "null" {
		return nil, "", nil
	}
	list, ok := decodeJSON([]byte(blocksRaw)).([]any)
	if !ok {
		return nil, "invalid_blocks_format", []string{"[ERROR] must be a JSON array of block objects [json-pointer:/blocks]"}
	}
	v := &validator{}
	v.blocks(list, "/blocks", maxMessageBlocks)
	if len(v.errs) > 0 {
		return nil, "invalid_blocks", v.errs
	}
	if len(list) == 0 {
		return json.RawMessage("[]"), "", nil
	}
	assignIDs(list)
	return mustJSON(list), "", nil
}

// checkView validates a modal view as views.open/push/update and
// response_action update/push do, returning it decoded with block_id and
// action_id filled in, or Slack's error code and detail messages.
func checkView(raw string) (map[string]any, string, []string) {
	if len(raw) > maxViewBytes {
		return nil, "view_too_large", nil
	}
	m, ok := decodeJSON([]byte(raw)).(map[string]any)
	if !ok {
		return nil, "invalid_arguments", []string{"[ERROR] must be an object [json-pointer:/view]"}
	}
	v := &validator{modal: true}
	const p = "/view"
	if str(m["type"]) != "modal" {
		v.add(p+"/type", "must be a valid enum value")
	}
	v.text(m, "title", p, true, maxModalTitle, true)
	v.text(m, "close", p, true, maxModalButton, false)
	v.text(m, "submit", p, true, maxModalButton, false)
	blocks, ok := v.viewFields(m, p)
	if ok {
		if sub, _ := m["submit"]; sub == nil && hasInputBlock(blocks) {
			v.add(p, "missing required field: submit (required when the view has input blocks)")
		}
	}
	if len(v.errs) > 0 {
		return nil, "invalid_arguments", v.errs
	}
	list, _ := blocks.([]any)
	assignIDs(list)
	return m, "", nil
}

func hasInputBlock(blocks any) bool {
	list, _ := blocks.([]any)
	for _, b := range list {
		if bm, ok := b.(map[string]any); ok && str(bm["type"]) == "input" {
			return true
		}
	}
	return false
}

// viewFields checks what every view type has (modal and home alike): the string fields and the
// required blocks. It returns the blocks, and whether they were present.
func (v *validator) viewFields(m map[string]any, p string) (any, bool) {
	v.str(m, "callback_id", p, maxCallbackID, false)
	v.str(m, "private_metadata", p, maxPrivateMeta, false)
	v.str(m, "external_id", p, maxExternalID, false)
	blocks, ok := m["blocks"]
	if !ok || blocks == nil {
		v.add(p, "missing required field: blocks")
		return nil, false
	}
	v.blocks(blocks, p+"/blocks", maxModalBlocks)
	return blocks, true
}

// CheckMessage returns what Slack would refuse in a message with this text and blocks (a JSON
// array, or nil for none), as chat.postMessage would; nil when Slack accepts it. It lets unit
// tests that render blocks without a server hold them to the fake's rules.
func CheckMessage(text string, blocks []byte) []string {
	_, code, msgs := checkMessage(text, string(blocks))
	return refusal(code, msgs)
}

// CheckView is CheckMessage for a view (JSON): a modal as views.open takes it, a Home tab as
// views.publish does.
func CheckView(view []byte) []string {
	check := checkView
	if m, _ := decodeJSON(view).(map[string]any); str(m["type"]) == "home" {
		check = checkHomeView
	}
	_, code, msgs := check(string(view))
	return refusal(code, msgs)
}

func refusal(code string, msgs []string) []string {
	if code == "" {
		return nil
	}
	return append([]string{code}, msgs...)
}
