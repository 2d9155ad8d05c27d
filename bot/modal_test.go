package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
)

func TestLifetimeChoices(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		lo, hi, def time.Duration
		want        []time.Duration
	}{
		{time.Hour, 3 * time.Hour, time.Hour, []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}},
		{time.Hour, 8 * time.Hour, time.Hour, []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}},
		{10 * time.Minute, 90 * time.Minute, 45 * time.Minute, []time.Duration{10 * time.Minute, 45 * time.Minute, time.Hour, 90 * time.Minute}},
		{2 * time.Hour, 2 * day, 3 * time.Hour, []time.Duration{2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, day, 2 * day}},
	}
	for _, tt := range tests {
		got := lifetimeChoices(tt.lo, tt.hi, tt.def)
		if renderJSON(t, got) != renderJSON(t, tt.want) {
			t.Errorf("lifetimeChoices(%v, %v, %v) = %v, want %v", tt.lo, tt.hi, tt.def, got, tt.want)
		}
	}
}

// formInputs returns the form's input blocks by block ID.
func formInputs(t *testing.T, v slack.ModalViewRequest) map[string]*slack.InputBlock {
	t.Helper()
	out := map[string]*slack.InputBlock{}
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok {
			out[in.BlockID] = in
		}
	}
	return out
}

func TestRequestFormFollowsThePolicy(t *testing.T) {
	v := RequestForm(FormSpec{Lifetimes: []time.Duration{time.Hour, 4 * time.Hour}, Default: 4 * time.Hour, OneTimeOnly: true, TZ: "Europe/Berlin"})
	in := formInputs(t, v)
	lifetime := in[formLifetime].Element.(*slack.SelectBlockElement)
	var offered []string
	for _, o := range lifetime.Options {
		offered = append(offered, o.Value)
	}
	if strings.Join(offered, ",") != "1h,4h" || lifetime.InitialOption.Value != "4h" {
		t.Fatalf("lifetimes offered %v, initial %s; want 1h,4h with 4h chosen", offered, lifetime.InitialOption.Value)
	}
	usage := in[formUsage].Element.(*slack.RadioButtonsBlockElement)
	if len(usage.Options) != 1 || usage.Options[0].Value != "once" || !strings.Contains(in[formUsage].Hint.Text, "only one-time") {
		t.Fatalf("a one-time-only tenant is offered %d usages (hint %v)", len(usage.Options), in[formUsage].Hint)
	}
	clock := in[formStartTime].Element.(*slack.TimePickerBlockElement)
	if clock.Timezone != "Europe/Berlin" || clock.InitialTime != "09:00" || !strings.Contains(in[formStartTime].Hint.Text, "Europe/Berlin") {
		t.Fatalf("start time picker %+v does not say it reads Europe/Berlin time", clock)
	}
	if !in[formStartDate].Optional || !in[formStartTime].Optional || v.PrivateMetadata != "Europe/Berlin" {
		t.Fatalf("start inputs must be optional and the zone kept for the submission (metadata %q)", v.PrivateMetadata)
	}
}

// TestRequestFormShowsWhatWasSubmitted: after a late refusal the form comes back as it was
// submitted, with the refusal under its field.
func TestRequestFormShowsWhatWasSubmitted(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	d := approvals.Draft{TargetUserID: "UADA", Lifetime: 2 * time.Hour, Reason: "first day <!channel>",
		StartsAt: time.Date(2026, 12, 1, 8, 30, 0, 0, berlin)}
	v := RequestForm(FormSpec{Lifetimes: []time.Duration{time.Hour, 2 * time.Hour}, Default: time.Hour, TZ: "Europe/Berlin",
		Draft: &d, Errors: map[string]string{formTarget: "No Entra ID account found for <ada@example.com>."}})
	in := formInputs(t, v)
	if got := in[formTarget].Element.(*slack.SelectBlockElement).InitialUser; got != "UADA" {
		t.Errorf("target shown %q", got)
	}
	if got := in[formLifetime].Element.(*slack.SelectBlockElement).InitialOption.Value; got != "2h" {
		t.Errorf("lifetime shown %q", got)
	}
	if got := in[formUsage].Element.(*slack.RadioButtonsBlockElement).InitialOption.Value; got != "multi" {
		t.Errorf("usage shown %q", got)
	}
	if date, clock := in[formStartDate].Element.(*slack.DatePickerBlockElement).InitialDate, in[formStartTime].Element.(*slack.TimePickerBlockElement).InitialTime; date != "2026-12-01" || clock != "08:30" {
		t.Errorf("start shown %s %s, want 2026-12-01 08:30 Berlin time", date, clock)
	}
	if got := in[formReason].Element.(*slack.PlainTextInputBlockElement).InitialValue; got != d.Reason {
		t.Errorf("reason shown %q", got)
	}
	js := renderJSON(t, v)
	if !strings.Contains(js, jsonText("No Entra ID account found for &lt;ada@example.com&gt;.")) {
		t.Fatalf("the refusal is not shown, escaped, in the form: %s", js)
	}
	// The refusal sits right under the target input.
	for i, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.BlockID == formTarget {
			if _, ok := v.Blocks.BlockSet[i+1].(*slack.ContextBlock); !ok {
				t.Fatal("the refusal is not under the target input")
			}
		}
	}
}

// submission builds the view_submission slack-go decodes from Slack's JSON.
func submission(t *testing.T, metadata string, values map[string]map[string]any) slack.InteractionCallback {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"type": "view_submission", "user": map[string]any{"id": "UMANAGER"},
		"view": map[string]any{"callback_id": CallbackForm, "private_metadata": metadata, "state": map[string]any{"values": values}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal(raw, &cb); err != nil {
		t.Fatal(err)
	}
	return cb
}

func TestReadFormStart(t *testing.T) {
	base := map[string]map[string]any{
		formTarget:   {formTarget: map[string]any{"type": "users_select", "selected_user": "UADA"}},
		formLifetime: {formLifetime: map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "2h"}}},
		formReason:   {formReason: map[string]any{"type": "plain_text_input", "value": "first day"}},
	}
	with := func(date, clock any) map[string]map[string]any {
		v := map[string]map[string]any{}
		for k, x := range base {
			v[k] = x
		}
		v[formStartDate] = map[string]any{formStartDate: map[string]any{"type": "datepicker", "selected_date": date}}
		v[formStartTime] = map[string]any{formStartTime: map[string]any{"type": "timepicker", "selected_time": clock}}
		return v
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	tests := []struct {
		name     string
		metadata string
		values   map[string]map[string]any
		want     time.Time
		errAt    string
	}{
		{"no start", "Asia/Tokyo", base, time.Time{}, ""},
		{"date and time in the requester's zone", "Asia/Tokyo", with("2026-12-01", "09:00"), time.Date(2026, 12, 1, 9, 0, 0, 0, tokyo), ""},
		{"unknown zone reads UTC", "", with("2026-12-01", "09:00"), time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), ""},
		{"a time alone is no start", "Asia/Tokyo", with(nil, "09:00"), time.Time{}, ""},
		{"a date needs a time", "Asia/Tokyo", with("2026-12-01", nil), time.Time{}, formStartTime},
		{"a malformed date", "Asia/Tokyo", with("2026-13-45", "09:00"), time.Time{}, formStartDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, errs := readForm(submission(t, tt.metadata, tt.values))
			if tt.errAt != "" {
				if errs[tt.errAt] == "" {
					t.Fatalf("errors %v, want one at %s", errs, tt.errAt)
				}
				return
			}
			if len(errs) != 0 || !d.StartsAt.Equal(tt.want) {
				t.Fatalf("start %v (errors %v), want %v", d.StartsAt, errs, tt.want)
			}
		})
	}
}

func TestFormErrorsSitBesideTheirField(t *testing.T) {
	tests := []struct {
		err   error
		block string
	}{
		{&approvals.Error{Code: approvals.NotFound, Field: approvals.FieldTarget, Message: "No Entra ID account found for x@example.com."}, formTarget},
		{&approvals.Error{Code: approvals.Invalid, Field: approvals.FieldStart, Message: "The start time you picked has already passed."}, formStartDate},
		{&approvals.Error{Code: approvals.Forbidden, Message: "You have asked for 10 passes in the last hour."}, formTarget},
	}
	for _, tt := range tests {
		got := formErrors(tt.err)
		if len(got) != 1 || got[tt.block] != approvals.UserMessage(tt.err) {
			t.Errorf("formErrors(%v) = %v, want the message at %s", tt.err, got, tt.block)
		}
	}
}

// TestFormErrorsAreClipped: a refusal shown beside a form field (response_action errors) is held
// to messageShare characters, counted as code points as Slack counts them, cut between whole
// characters and marked; a refusal within the share is left as it is.
func TestFormErrorsAreClipped(t *testing.T) {
	long := "No Entra ID account found for " + strings.Repeat("a", 3000) + "@contoso.com."
	emoji := strings.Repeat("😀", 2*messageShare) // 2 UTF-16 units and 4 bytes each
	tests := []struct {
		name, msg string
		want      string
	}{
		{"short", "Pick the person the pass is for.", "Pick the person the pass is for."},
		{"exactly the share", strings.Repeat("x", messageShare), strings.Repeat("x", messageShare)},
		{"long", long, long[:messageShare-1] + "…"},
		{"code points, not UTF-16 units", emoji, strings.Repeat("😀", messageShare-1) + "…"},
		{"cut before trailing spaces", strings.Repeat("ab ", messageShare), strings.TrimRight(strings.Repeat("ab ", messageShare)[:messageShare-1], " ") + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formErrors(&approvals.Error{Code: approvals.Invalid, Field: approvals.FieldTarget, Message: tt.msg})[formTarget]
			if got != tt.want {
				t.Fatalf("form error of %d characters = %d characters %q..., want %d", utf8.RuneCountInString(tt.msg),
					utf8.RuneCountInString(got), firstRunes(got, 20), utf8.RuneCountInString(tt.want))
			}
			if n := utf8.RuneCountInString(got); n > messageShare || !utf8.ValidString(got) {
				t.Fatalf("form error is %d characters (valid UTF-8: %v), over %d", n, utf8.ValidString(got), messageShare)
			}
		})
	}
}

func firstRunes(s string, n int) string {
	r := []rune(s)
	return string(r[:min(n, len(r))])
}

func TestPassModalInTheRecipientsZone(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	r := sampleRequest(approvals.Issued)
	r.DecidedAt = r.CreatedAt
	r.PassStartsAt = time.Date(2026, 12, 1, 9, 0, 0, 0, london)
	r.PassExpiresAt = r.PassStartsAt.Add(2 * time.Hour)
	r.UsableOnce = false
	js := renderJSON(t, PassModalIn(r, "Xy7#k<2&", london))
	for _, want := range []string{
		jsonText("Xy7#k<2&"), "rich_text_preformatted",
		"Works from:* Tue 1 Dec 2026, 09:00 GMT (Europe/London)", "Valid until:* Tue 1 Dec 2026, 11:00 GMT (Europe/London)",
		"any number of sign-ins", "1. Wait until Tue 1 Dec 2026, 09:00 GMT", "2. Sign in as *ada@example.com*",
		"3. Choose *+ Add sign-in method*, then *Passkey*", jsonText("<" + SecurityInfoURL + ">"),
	} {
		if !strings.Contains(js, want) {
			t.Errorf("pass modal lacks %q:\n%s", want, js)
		}
	}
	if strings.Contains(js, "<!date") {
		t.Error("with the recipient's zone known, times are written out, not left to Slack")
	}
}

func TestStatusBlocks(t *testing.T) {
	pending, issued := sampleRequest(approvals.Pending), sampleRequest(approvals.Issued)
	issued.ID = "tap_bbbbbbbbbbbbbbbb"
	pending.StartsAt = pending.CreatedAt.Add(48 * time.Hour)
	blocks := StatusBlocks([]*approvals.Request{pending, issued})
	var cancels []string
	for _, b := range blocks {
		if s, ok := b.(*slack.SectionBlock); ok && s.Accessory != nil && s.Accessory.ButtonElement != nil {
			btn := s.Accessory.ButtonElement
			if btn.ActionID != ActionCancel || btn.Confirm == nil {
				t.Fatalf("status button %+v is not a confirmed Cancel", btn)
			}
			cancels = append(cancels, btn.Value)
		}
	}
	if len(cancels) != 1 || cancels[0] != pending.ID {
		t.Fatalf("Cancel buttons on %v, want only on the pending %s", cancels, pending.ID)
	}
	js := renderJSON(t, blocks)
	for _, want := range []string{"Waiting for approval", "Approved by <@UAPPROVER>", "*Starts:* <!date^", pending.ID, issued.ID} {
		if !strings.Contains(js, jsonText(want)) {
			t.Errorf("status lacks %q: %s", want, js)
		}
	}
	if strings.Contains(js, jsonText("<!channel>")) {
		t.Error("status shows user text unescaped")
	}
	if empty := renderJSON(t, StatusBlocks(nil)); !strings.Contains(empty, "/tap") {
		t.Errorf("an empty status does not say how to ask: %s", empty)
	}
}
