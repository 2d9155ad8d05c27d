package slackfake

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"sort"
	"strings"
)

// Button is a button shown in a message or view.
type Button struct {
	BlockID  string
	ActionID string
	Text     string
	Value    string
	URL      string
	Style    string
}

// BlocksText returns every human-visible text inside a Block Kit JSON array
// (section text and fields, headers, context, button labels, options,
// rich text, ...), one per line. It is what a test should search to check
// what a user reads.
func BlocksText(blocks json.RawMessage) string {
	var out []string
	collectText(decodeJSON(blocks), &out)
	return strings.Join(out, "\n")
}

// BlocksButtons lists the buttons in a Block Kit JSON array (actions blocks
// and section accessories), in display order.
func BlocksButtons(blocks json.RawMessage) []Button {
	list, _ := decodeJSON(blocks).([]any)
	var out []Button
	for _, b := range list {
		bm, _ := b.(map[string]any)
		blockID := str(bm["block_id"])
		var els []any
		switch str(bm["type"]) {
		case "actions":
			els, _ = bm["elements"].([]any)
		case "section":
			if acc, ok := bm["accessory"]; ok {
				els = []any{acc}
			}
		}
		for _, e := range els {
			em, _ := e.(map[string]any)
			if str(em["type"]) != "button" {
				continue
			}
			tm, _ := em["text"].(map[string]any)
			out = append(out, Button{
				BlockID:  blockID,
				ActionID: str(em["action_id"]),
				Text:     str(tm["text"]),
				Value:    str(em["value"]),
				URL:      str(em["url"]),
				Style:    str(em["style"]),
			})
		}
	}
	return out
}

// findButton returns the button element with actionID and value in blocks,
// and its block's ID.
func findButton(blocks json.RawMessage, actionID, value string) (map[string]any, string) {
	list, _ := decodeJSON(blocks).([]any)
	for _, b := range list {
		bm, _ := b.(map[string]any)
		var els []any
		switch str(bm["type"]) {
		case "actions":
			els, _ = bm["elements"].([]any)
		case "section":
			if acc, ok := bm["accessory"]; ok {
				els = []any{acc}
			}
		}
		for _, e := range els {
			em, _ := e.(map[string]any)
			if str(em["type"]) == "button" && str(em["action_id"]) == actionID && str(em["value"]) == value {
				return em, str(bm["block_id"])
			}
		}
	}
	return nil, ""
}

// noBlocks reports whether a stored blocks value is absent or "[]".
func noBlocks(b json.RawMessage) bool {
	list, _ := decodeJSON(b).([]any)
	return len(list) == 0
}

func joinText(text string, blocks json.RawMessage) string {
	bt := BlocksText(blocks)
	switch {
	case bt == "":
		return text
	case text == "":
		return bt
	}
	return text + "\n" + bt
}

// collectText gathers every string stored under a "text" key.
func collectText(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["text"].(string); ok && t != "" {
			*out = append(*out, t)
		}
		for _, k := range sortedKeys(x) {
			if k == "text" {
				if _, ok := x[k].(string); ok {
					continue
				}
			}
			collectText(x[k], out)
		}
	case []any:
		for _, e := range x {
			collectText(e, out)
		}
	}
}

// allStrings returns every string leaf of a JSON document.
func allStrings(raw json.RawMessage) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if x != "" {
				out = append(out, x)
			}
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(decodeJSON(raw))
	return out
}

// decodeJSON decodes raw into generic values, keeping numbers exact; it
// returns nil for empty or invalid input.
func decodeJSON(raw []byte) any {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	if dec.More() {
		return nil
	}
	return v
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("slackfake: marshal: " + err.Error())
	}
	return b
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// interactiveElements are element types that carry an action_id.
var interactiveElements = map[string]bool{
	"button": true, "checkboxes": true, "datepicker": true, "datetimepicker": true, "timepicker": true,
	"overflow": true, "radio_buttons": true, "plain_text_input": true, "email_text_input": true,
	"url_text_input": true, "number_input": true, "rich_text_input": true, "file_input": true,
	"static_select": true, "external_select": true, "users_select": true, "conversations_select": true,
	"channels_select": true, "multi_static_select": true, "multi_external_select": true,
	"multi_users_select": true, "multi_conversations_select": true, "multi_channels_select": true,
	"workflow_button": true,
}

// assignIDs gives every block a block_id and every interactive element an
// action_id where the app left them out, as Slack does when it stores a
// message or view. Slack's generated IDs are random; so are these.
func assignIDs(blocks []any) {
	for _, b := range blocks {
		bm, ok := b.(map[string]any)
		if !ok {
			continue
		}
		if _, ok := bm["block_id"]; !ok {
			bm["block_id"] = randID(5)
		}
		var els []any
		switch str(bm["type"]) {
		case "actions":
			els, _ = bm["elements"].([]any)
		case "section":
			els = []any{bm["accessory"]}
		case "input":
			els = []any{bm["element"]}
		}
		for _, e := range els {
			em, ok := e.(map[string]any)
			if !ok || !interactiveElements[str(em["type"])] {
				continue
			}
			if _, ok := em["action_id"]; !ok {
				em["action_id"] = randID(4)
			}
		}
	}
}

func randID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
