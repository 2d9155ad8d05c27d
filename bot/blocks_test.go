package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
)

func sampleRequest(state approvals.State) *approvals.Request {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	return &approvals.Request{
		ID: "tap_abcdefghijklmnop", Requester: "UMANAGER",
		Target:    approvals.Target{SlackID: "UTARGET", EntraID: "e1", UPN: "ada@example.com", DisplayName: "Ada <@UEVIL>"},
		Recipient: "UTARGET", Lifetime: 2 * time.Hour, UsableOnce: true,
		Reason: "new laptop <!channel> <@UBOSS> <https://evil.example|click> & more", State: state,
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), DecidedBy: "UAPPROVER",
		PassExpiresAt: now.Add(2 * time.Hour), RevealedAt: now.Add(time.Minute),
		RevealMessage: approvals.MessageRef{Channel: "DADA", TS: "1.2"},
		RevokedBy:     "UREVOKER",
	}
}

func renderJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buttons returns label -> value of every button in blocks.
func buttons(blocks []slack.Block) map[string]string {
	out := map[string]string{}
	for _, b := range blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out[btn.Text.Text] = btn.Value
				}
			}
		}
	}
	return out
}

func TestApprovalBlocks(t *testing.T) {
	tests := []struct {
		state       approvals.State
		wantButtons map[string]string
		wantText    string
	}{
		{approvals.Pending, map[string]string{"Approve": "tap_abcdefghijklmnop", "Deny": "tap_abcdefghijklmnop"}, "can be approved until"},
		{approvals.Issued, map[string]string{"Revoke": "tap_abcdefghijklmnop"}, "Approved by <@UAPPROVER>"},
		{approvals.Revoked, map[string]string{}, "revoked by <@UREVOKER>"},
		{approvals.Denied, map[string]string{}, "Denied by <@UAPPROVER>"},
		{approvals.Expired, map[string]string{}, "the pass expired"},
		{approvals.Failed, map[string]string{}, "but failed"},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			r := sampleRequest(tt.state)
			blocks := ApprovalBlocks(r)
			if got := buttons(blocks); len(got) != len(tt.wantButtons) || renderJSON(t, got) != renderJSON(t, tt.wantButtons) {
				t.Fatalf("buttons = %v, want %v", got, tt.wantButtons)
			}
			js := renderJSON(t, blocks)
			for _, want := range []string{tt.wantText, "<@UMANAGER>", "<@UTARGET>", "ada@example.com", "2h, one-time",
				"new laptop &lt;!channel&gt; &lt;@UBOSS&gt; &lt;https://evil.example|click&gt; &amp; more", "Ada &lt;@UEVIL&gt;"} {
				if !strings.Contains(js, jsonText(want)) {
					t.Errorf("approval message lacks %q:\n%s", want, js)
				}
			}
			for _, ping := range []string{"<!channel>", "<@UBOSS>", "<@UEVIL>", "<https://evil"} {
				if strings.Contains(js, jsonText(ping)) {
					t.Errorf("approval message lets user text through unescaped: %q", ping)
				}
			}
		})
	}
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestApprovalBlocksWarnings(t *testing.T) {
	r := sampleRequest(approvals.Pending)
	r.ReplacesActivePass = true
	r.Target.SlackID = ""
	r.Recipient = r.Requester
	js := renderJSON(t, ApprovalBlocks(r))
	for _, want := range []string{"already has an active Temporary Access Pass", "has no Slack account", "sent to <@UMANAGER>"} {
		if !strings.Contains(js, jsonText(want)) {
			t.Errorf("approval message lacks %q", want)
		}
	}
}

func TestRevealBlocksHoldNoPass(t *testing.T) {
	r := sampleRequest(approvals.Issued)
	blocks := RevealBlocks(r)
	if got := buttons(blocks); got["Reveal pass"] != r.ID || got["This wasn't me"] != r.ID || len(got) != 2 {
		t.Fatalf("reveal DM buttons = %v, want Reveal pass and This wasn't me", got)
	}
	r.State = approvals.Revealed
	revealed := RevealBlocks(r)
	if got := buttons(revealed); len(got) != 1 || got["This wasn't me"] == "" || !strings.Contains(renderJSON(t, revealed), "Revealed") {
		t.Fatalf("revealed DM should say so and offer only This wasn't me: %s", renderJSON(t, revealed))
	}
	r.State = approvals.Revoked
	if got := buttons(RevealBlocks(r)); len(got) != 0 {
		t.Fatalf("revoked DM still has buttons %v", got)
	}
}

func TestPassModal(t *testing.T) {
	r := sampleRequest(approvals.Issued)
	m := PassModal(r, "Xy7#k<2&")
	js := renderJSON(t, m)
	if len(m.Title.Text) > 24 {
		t.Fatalf("modal title %q is over Slack's 24 characters", m.Title.Text)
	}
	for _, want := range []string{jsonText("Xy7#k<2&"), SecurityInfoURL, "one sign-in", "Valid until"} {
		if !strings.Contains(js, want) {
			t.Errorf("pass modal lacks %q: %s", want, js)
		}
	}
	for _, title := range []string{RequestForm(FormSpec{Lifetimes: []time.Duration{time.Hour}, Default: time.Hour}).Title.Text, MessageModal("Cannot show the pass", "x").Title.Text} {
		if len(title) > 24 {
			t.Errorf("modal title %q is over 24 characters", title)
		}
	}
}

// TestMrkdwnIsVerbatim keeps Slack from auto-linking bare @channel or #channel in user text.
func TestMrkdwnIsVerbatim(t *testing.T) {
	r := sampleRequest(approvals.Failed)
	r.Failure = "Graph said <!channel>"
	for name, blocks := range map[string][]slack.Block{"approval": ApprovalBlocks(r), "reveal": RevealBlocks(sampleRequest(approvals.Issued))} {
		js := renderJSON(t, blocks)
		if strings.Contains(js, `"type":"mrkdwn","text"`) && strings.Count(js, `"type":"mrkdwn"`) != strings.Count(js, `"verbatim":true`) {
			t.Errorf("%s: a mrkdwn text object is not verbatim: %s", name, js)
		}
		if strings.Contains(js, jsonText("<!channel>")) {
			t.Errorf("%s: failure text not escaped", name)
		}
	}
}

// TestReasonStaysOnOneLine: a reason with line breaks cannot add a line of its own, such as a
// fake "*For:*", to any surface that shows it.
func TestReasonStaysOnOneLine(t *testing.T) {
	r := sampleRequest(approvals.Issued)
	r.Reason = "new laptop\n*For:* <@UBOSS>\r\n*Approved by:* me"
	home := HomeView("UAPPROVER", "", []approvals.Decidable{{Request: r}}, nil, nil, func(*approvals.Request) []string { return nil })
	for name, rendered := range map[string]any{
		"approval message": ApprovalBlocks(r),
		"Reveal DM":        RevealBlocks(r),
		"App Home":         home,
		"audit line":       AuditLine(approvals.Event{Event: "requested", Reason: r.Reason}),
	} {
		t.Run(name, func(t *testing.T) {
			js := renderJSON(t, rendered)
			if !strings.Contains(js, jsonText("new laptop *For:* &lt;@UBOSS&gt; *Approved by:* me")) {
				t.Fatalf("the reason is not shown on one line: %s", js)
			}
		})
	}
}
