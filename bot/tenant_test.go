package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/internal/slackfake"
)

func sampleExternal(state approvals.ExternalState) *approvals.ExternalPass {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	return &approvals.ExternalPass{
		ID: "tap_abcdefghijklmnop", SlackID: "UADA", State: state, SeenAt: at,
		Pass: approvals.TenantPassEvent{RecordID: "Directory_abc", Change: approvals.PassCreated, At: at,
			UserID: "entra-ada", UserUPN: "ada@example.com <!channel>", PassID: "pass-1",
			StartsAt: at, EndsAt: at.Add(time.Hour), Usage: approvals.UsageOnce,
			By: approvals.AuditActor{UserID: "entra-root", UPN: "root@example.com", DisplayName: "Root <@UEVIL>"}},
		DecidedBy: "USEC", DecidedAt: at.Add(time.Minute), Reason: "onboarding <!here>",
		DeletedBy: approvals.AuditActor{AppID: "app-1", DisplayName: "MSP <tool>"},
	}
}

func TestExternalAlertBlocks(t *testing.T) {
	tests := []struct {
		state       approvals.ExternalState
		privileged  bool
		wantButtons map[string]string
		wantText    []string
	}{
		{approvals.ExternalAlerted, false, map[string]string{"Revoke": "tap_abcdefghijklmnop", "Expected": "tap_abcdefghijklmnop"},
			[]string{"<@UADA> · ada@example.com &lt;!channel&gt;", "*Made by:* user Root &lt;@UEVIL&gt; (root@example.com)", "one-time", "*Privileged:* no"}},
		{approvals.ExternalAlerted, true, map[string]string{"Revoke": "tap_abcdefghijklmnop", "Expected": "tap_abcdefghijklmnop"},
			[]string{"URGENT", "*yes* (roles: Global Administrator)", "<@USECTEAM>"}},
		{approvals.ExternalRevoked, false, map[string]string{}, []string{"Revoked by <@USEC>"}},
		{approvals.ExternalAcknowledged, false, map[string]string{}, []string{"Expected, said <@USEC>", "onboarding &lt;!here&gt;"}},
		{approvals.ExternalDeleted, false, map[string]string{}, []string{"Deleted in Entra ID by app MSP &lt;tool&gt;"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			p := sampleExternal(tt.state)
			if tt.privileged {
				p.Privileged = approvals.Privileges{Roles: []string{"Global Administrator"}}
			}
			blocks := ExternalAlertBlocks(p, []string{"USECTEAM"})
			if got := buttons(blocks); len(got) != len(tt.wantButtons) || got["Revoke"] != tt.wantButtons["Revoke"] || got["Expected"] != tt.wantButtons["Expected"] {
				t.Fatalf("buttons %v, want %v", got, tt.wantButtons)
			}
			rendered := renderJSON(t, blocks)
			for _, want := range tt.wantText {
				if !strings.Contains(rendered, strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(want, "&", `\u0026`), "<", `\u003c`), ">", `\u003e`)) {
					t.Errorf("alert lacks %q:\n%s", want, rendered)
				}
			}
			for _, raw := range []string{"<!channel>", "<@UEVIL>", "<!here>", "<tool>"} {
				if strings.Contains(rendered, strings.ReplaceAll(strings.ReplaceAll(raw, "<", `\u003c`), ">", `\u003e`)) {
					t.Errorf("directory or user text %q was not escaped", raw)
				}
			}
			raw, _ := json.Marshal(blocks)
			if errs := slackfake.CheckMessage(ExternalAlertText(p), raw); errs != nil {
				t.Fatalf("Slack would refuse the alert: %v", errs)
			}
		})
	}
}

// TestExternalAlertFitsSlack renders the alert with every piece of directory and user text as
// long as Entra ID and the form allow and growing fivefold when escaped.
func TestExternalAlertFitsSlack(t *testing.T) {
	amps := func(n int) string { return strings.Repeat("&", n) }
	for _, state := range []approvals.ExternalState{approvals.ExternalAlerted, approvals.ExternalRevoked, approvals.ExternalAcknowledged, approvals.ExternalDeleted} {
		p := sampleExternal(state)
		p.Pass.UserUPN, p.Pass.RecordID = amps(113), amps(500)
		p.Pass.By = approvals.AuditActor{UPN: amps(113), DisplayName: amps(256)}
		p.DeletedBy = approvals.AuditActor{AppID: amps(100), DisplayName: amps(256)}
		p.Reason = amps(2000)
		p.Privileged = approvals.Privileges{Roles: []string{amps(256), amps(256)}, Groups: []string{amps(256)}}
		protected := make([]string, 60)
		for i := range protected {
			protected[i] = "S0123456789AB"
		}
		raw, _ := json.Marshal(ExternalAlertBlocks(p, protected))
		if errs := slackfake.CheckMessage(ExternalAlertText(p), raw); errs != nil {
			t.Errorf("%s: Slack would refuse the alert: %v", state, errs)
		}
	}
	if errs := slackfake.CheckView([]byte(renderJSON(t, ExpectedModal("tap_abcdefghijklmnop")))); errs != nil {
		t.Fatalf("Slack would refuse the Expected form: %v", errs)
	}
}

func TestPassRemovedInEntraIsShownOnTheRequest(t *testing.T) {
	r := sampleRequest(approvals.Revoked)
	r.RevokedBy, r.RemovedInEntraBy = "", "Root <@UEVIL> (root@example.com)"
	for what, text := range map[string]string{
		"approval message": renderJSON(t, ApprovalBlocks(r)),
		"reveal DM":        renderJSON(t, RevealBlocks(r)),
		"requester":        requesterUpdate(r),
	} {
		if !strings.Contains(text, "removed in Entra ID by Root") || strings.Contains(text, "UEVIL>") {
			t.Errorf("%s does not say, escaped, who removed the pass in Entra ID: %s", what, text)
		}
	}
	for _, b := range RevealBlocks(r) {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == ActionReveal {
					t.Fatal("the DM still offers to reveal a deleted pass")
				}
			}
		}
	}
}
