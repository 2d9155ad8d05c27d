package bot

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/approvals"
)

// FuzzInteractionPayload feeds arbitrary interaction payloads through slack-go's decoding and
// tapbot's own checks of clicks and form submissions: nothing may panic, a click is only taken
// with a well-formed request ID, and a form is only taken complete.
func FuzzInteractionPayload(f *testing.F) {
	for _, seed := range []string{
		`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"tap_approve","value":"tap_abcdefghijklmnop"}]}`,
		`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"tap_reveal","value":"../../x"},{"action_id":"tap_deny"}]}`,
		`{"type":"block_actions","actions":[]}`,
		`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"tap_request","state":{"values":{"target":{"target":{"type":"users_select","selected_user":"U2"}},"reason":{"reason":{"type":"plain_text_input","value":"new laptop"}},"lifetime":{"lifetime":{"type":"static_select","selected_option":{"value":"2h"}}}}}}}`,
		`{"type":"view_submission","user":{"id":"U1"},"view":{"private_metadata":"Europe/Berlin","state":{"values":{"target":{"target":{"selected_user":"U2"}},"reason":{"reason":{"value":"x"}},"start_date":{"start_date":{"selected_date":"2026-03-29"}},"start_time":{"start_time":{"selected_time":"02:30"}}}}}}`,
		`{"type":"view_submission","view":{"private_metadata":"../../etc/passwd","state":{"values":{"start_date":{"start_date":{"selected_date":"9999-99-99"}}}}}}`,
		`{"type":"view_submission","view":{"state":null}}`,
		`{"type":"view_submission","view":{"state":{"values":{"lifetime":{"lifetime":{"selected_option":{"value":"-5d"}}}}}}}`,
		`{"type":"block_actions","user":{"id":"U1"},"container":{"type":"view","view_id":"V1"},"view":{"id":"V1","type":"home","private_metadata":"home:U1","blocks":[{"type":"actions","elements":[{"type":"button","action_id":"tap_home_approve","value":"tap_abcdefghijklmnop"}]}]},"actions":[{"action_id":"tap_home_approve","value":"tap_abcdefghijklmnop"}]}`,
		`{}`, `null`, `[]`, `{"actions":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	b := New(Config{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var cb slack.InteractionCallback
		if err := json.Unmarshal(payload, &cb); err != nil {
			return // slack-go refuses it before tapbot sees it
		}
		evt := &socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb}
		if _, id, ok := b.clicked(evt); ok && !approvals.ValidID(id) {
			t.Fatalf("took a click with request ID %q", id)
		}
		if cb, id, ok := b.homeClicked(evt); ok && (!approvals.ValidID(id) || cb.View.PrivateMetadata != homeOwner(cb.User.ID)) {
			t.Fatalf("took a Home tab click with request ID %q from %q's view", id, cb.View.PrivateMetadata)
		}
		d, errs := readForm(cb)
		if len(errs) == 0 && (d.TargetUserID == "" || strings.TrimSpace(d.Reason) == "" || d.Lifetime < 0) {
			t.Fatalf("took an incomplete form: %+v", d)
		}
	})
}
