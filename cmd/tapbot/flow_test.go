package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// TestRequestApproveIssueRevealOnce walks the whole product on both stores: a manager asks, an
// approver approves, Entra creates the pass, and the user sees it exactly once.
func TestRequestApproveIssueRevealOnce(t *testing.T) {
	for name, opts := range map[string][]worldOption{"embedded": nil, "redis": {withRedis}} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, opts...)
			ack := w.tap(manager, "<@UADA|ada> 2h once new laptop, setting up a passkey")
			if ack.Latency > 3*time.Second {
				t.Fatalf("ack took %v, over Slack's 3 seconds", ack.Latency)
			}
			w.ephemeral(manager, "sent to the approvers")

			m := w.approvalMessage(1)
			text := m.PlainText()
			for _, want := range []string{"<@UMANAGER>", "<@UADA>", "Ada Lovelace", "ada@example.com", "2h, one-time", "new laptop, setting up a passkey"} {
				if !strings.Contains(text, want) {
					t.Errorf("approval message lacks %q:\n%s", want, text)
				}
			}
			button(t, m, "Approve")
			button(t, m, "Deny")

			w.click(approver, m, "Approve")
			w.waitFor("approval message updated", func() bool {
				return strings.Contains(w.message(m.Ref()).PlainText(), "Approved by <@UAPPROVER>")
			})
			if got := labels(w.message(m.Ref())); got != "Revoke" {
				t.Fatalf("approval message shows %q after approval, want only Revoke", got)
			}
			passes := w.graph.Passes(adaEntraID)
			if len(passes) != 1 || passes[0].LifetimeMinutes != 120 || !passes[0].UsableOnce {
				t.Fatalf("Entra passes = %+v, want one 120-minute one-time pass", passes)
			}
			code := passes[0].Code

			dm := w.dm(ada, "asked for a Temporary Access Pass for you")
			if strings.Contains(dm.PlainText(), code) {
				t.Fatal("the reveal DM holds the pass")
			}
			w.dm(manager, "was approved by <@UAPPROVER>")

			w.click(ada, dm, "Reveal pass")
			v := w.view(ada, code)
			for _, want := range []string{"https://aka.ms/mysecurityinfo", "Valid until", "one sign-in"} {
				if !strings.Contains(v.PlainText(), want) {
					t.Errorf("pass modal lacks %q", want)
				}
			}
			w.waitFor("reveal DM updated", func() bool {
				cur := w.message(dm.Ref())
				return strings.Contains(cur.PlainText(), "Revealed") && labels(cur) == "This wasn't me"
			})
			w.dm(manager, "<@UADA> revealed the pass")
			w.waitFor("approval message says revealed", func() bool {
				return strings.Contains(w.message(m.Ref()).PlainText(), "revealed by <@UADA>")
			})

			// A second device still showing the old DM clicks again: no pass.
			b := button(t, dm, "Reveal pass")
			if _, err := w.slack.ClickStaleButton(w.ctx(), ada, dm.Ref(), b.ActionID, b.Value); err != nil {
				t.Fatal(err)
			}
			w.view(ada, "already revealed")
			if shown := w.modalsShowing(ada, code); shown != 1 {
				t.Fatalf("the pass appeared in %d modals, want exactly 1", shown)
			}
		})
	}
}

func TestDenyNeverCallsGraphCreate(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "ada@example.com 1h multi contractor onboarding")
	m := w.approvalMessage(1)
	w.click(groupie, m, "Deny")
	w.waitFor("denied message", func() bool {
		cur := w.message(m.Ref())
		return strings.Contains(cur.PlainText(), "Denied by <@UGROUPIE>") && len(cur.Buttons()) == 0
	})
	w.dm(manager, "was denied by <@UGROUPIE>")
	if n := len(w.graph.Passes(adaEntraID)); n != 0 {
		t.Fatalf("a denied request created %d passes", n)
	}
}

func TestRefusedApprovalsLeaveTheRequestPending(t *testing.T) {
	w := newWorld(t, withEnv("TAP_APPROVERS", approver+","+manager+","+ada))
	w.tap(manager, "<@UADA> 1h once lost phone")
	m := w.approvalMessage(1)
	tests := []struct {
		who, want string
	}{
		{manager, "You asked for this pass, so someone else has to approve it."},
		{ada, "This pass is for you, so someone else has to approve it."},
		{outsider, "may not approve or deny this request; ask one of the people who can. Who can: <@UAPPROVER>, <@UMANAGER>, <@UADA>."},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			w.click(tt.who, m, "Approve")
			w.ephemeral(tt.who, tt.want)
			if len(w.message(m.Ref()).Buttons()) != 2 {
				t.Fatal("a refused approval removed the buttons")
			}
		})
	}
	if n := len(w.graph.Passes(adaEntraID)); n != 0 {
		t.Fatalf("refused approvals created %d passes", n)
	}
	w.click(approver, m, "Approve")
	w.dm(ada, "Reveal")
}

func TestRevealBySomeoneElseIsRefused(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once lost phone")
	w.click(approver, w.approvalMessage(1), "Approve")
	dm := w.dm(ada, "asked for a Temporary Access Pass for you")
	b := button(t, dm, "Reveal pass")
	if _, err := w.slack.ClickStaleButton(w.ctx(), outsider, dm.Ref(), b.ActionID, b.Value); err != nil {
		t.Fatal(err)
	}
	w.view(outsider, "not for you")
	// The pass is still there for Ada.
	w.click(ada, dm, "Reveal pass")
	w.view(ada, w.codes(adaEntraID)[0])
}

// TestConcurrentRevealClicksShowThePassOnce fires 20 reveal clicks at once through Slack, tapbot
// and a real redis-server: exactly one may claim the pass, and if Slack replaced that click's
// window before the pass reached it, the pass goes back unseen for the next click.
func TestConcurrentRevealClicksShowThePassOnce(t *testing.T) {
	w := newWorld(t, withRedis)
	w.tap(manager, "<@UADA> 1h once lost phone")
	w.click(approver, w.approvalMessage(1), "Approve")
	dm := w.dm(ada, "asked for a Temporary Access Pass for you")
	b := button(t, dm, "Reveal pass")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := w.slack.ClickStaleButton(w.ctx(), ada, dm.Ref(), b.ActionID, b.Value); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var outcomes map[string]int
	w.waitFor("every click answered", func() bool {
		outcomes = w.revealOutcomes()
		total := 0
		for _, n := range outcomes {
			total += n
		}
		return total == 20
	})
	if outcomes["revealed"] > 1 || outcomes["revealed"]+outcomes["returned"] == 0 {
		t.Fatalf("reveal outcomes %v: want at most one reveal, and some click to have claimed the pass", outcomes)
	}
	// Slack keeps one modal per user: each views.open replaced the last, so updates to the
	// replaced ones were refused. That is Slack's doing, not a mistake of tapbot's.
	for _, v := range w.slack.Violations() {
		if v != "views.update: not_found" {
			t.Errorf("unexpected Slack violation: %s", v)
		}
	}
	w.slack.ResetViolations()

	code := w.codes(adaEntraID)[0]
	if outcomes["revealed"] == 0 {
		w.ephemeral(ada, "It is still safe and unseen")
		if _, err := w.slack.ClickStaleButton(w.ctx(), ada, dm.Ref(), b.ActionID, b.Value); err != nil {
			t.Fatal(err)
		}
		w.view(ada, code)
	}
	if shown := w.modalsShowing(ada, code); shown != 1 {
		t.Fatalf("the pass was shown in %d modals, want exactly 1", shown)
	}
	if n := len(w.graph.Passes(adaEntraID)); n != 1 {
		t.Fatalf("%d passes created, want 1", n)
	}
}

func TestExpiredRequestCannotBeApproved(t *testing.T) {
	w := newWorld(t, withEnv("TAP_REQUEST_TTL", "2h"))
	w.tap(manager, "<@UADA> 1h once lost phone")
	m := w.approvalMessage(1)
	w.advance(3 * time.Hour)
	w.click(approver, m, "Approve")
	w.ephemeral(approver, "expired")
	w.waitFor("expired message", func() bool {
		cur := w.message(m.Ref())
		return strings.Contains(cur.PlainText(), "Expired") && len(cur.Buttons()) == 0
	})
	w.dm(manager, "expired without a decision")
	if n := len(w.graph.Passes(adaEntraID)); n != 0 {
		t.Fatalf("an expired request created %d passes", n)
	}
}

func TestBadInputReachesNoApprover(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		text, want string
	}{
		{"<@UADA> 0m lost phone", "zero"},
		{"<@UADA> -1h lost phone", "negative"},
		{"<@UADA> 2h", "reason is required"},
		{"@ada 2h lost phone", "could not tell who"},
		{"<@UADA> 45d lost phone", "at most 8h"},
		{"ghost@example.com 1h lost phone", "No Entra ID account"},
		{"<!channel>@x.io 1h lost phone", "&lt;!channel&gt;@x.io is not a valid email"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			ack := w.tap(manager, tt.text)
			got := ackText(ack)
			if got == "" {
				got = w.ephemeral(manager, tt.want).PlainText()
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("reply = %q, want it to contain %q", got, tt.want)
			}
		})
	}
	if n := len(w.slack.Messages(approvalChannel)); n != 0 {
		t.Fatalf("bad input reached the approvers: %d messages", n)
	}
	help := ackText(w.tap(manager, "help"))
	if !strings.Contains(help, "/tap @person") {
		t.Fatalf("/tap help = %q", help)
	}
	for _, a := range w.slack.Acks() {
		if strings.Contains(string(a.Payload), "<!channel>") || strings.Contains(string(a.Payload), `\u003c!channel`) {
			t.Fatal("user text was echoed unescaped")
		}
	}
}

func TestHostileReasonCannotPing(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once <!channel> <!here> <@UAPPROVER> <https://evil.example|click here>")
	m := w.approvalMessage(1)
	for _, v := range m.History {
		text := string(v.Blocks) + v.Text
		for _, ping := range []string{"<!channel>", "<!here>", "<https://evil"} {
			if strings.Contains(text, ping) || strings.Contains(text, strings.ReplaceAll(strings.ReplaceAll(ping, "<", `\u003c`), ">", `\u003e`)) {
				t.Fatalf("approval message carries %q unescaped: %s", ping, text)
			}
		}
	}
	if !strings.Contains(m.PlainText(), "&lt;!channel&gt;") {
		t.Fatalf("reason not shown escaped: %s", m.PlainText())
	}
}

func TestTargetWithoutSlackAccountGoesToRequester(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "ext@example.com 1h once contractor without Slack")
	m := w.approvalMessage(1)
	if !strings.Contains(m.PlainText(), "has no Slack account") || !strings.Contains(m.PlainText(), "sent to <@UMANAGER>") {
		t.Fatalf("approval message does not say who receives the pass:\n%s", m.PlainText())
	}
	w.click(approver, m, "Approve")
	dm := w.dm(manager, "has no Slack account and could not be notified, so the pass comes to you")
	w.click(manager, dm, "Reveal pass")
	w.view(manager, w.codes(extEntraID)[0])
}

func TestGraphErrorsArePlainSentences(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(w *world)
		request  string
		want     string // what the requester and approvers read
		atSubmit bool   // refused before approvers see it
	}{
		{name: "lifetime outside tenant policy", atSubmit: true,
			setup:   func(w *world) { p := graphfake.DefaultPolicy; p.MaxLifetimeMinutes = 240; w.graph.SetPolicy(p) },
			request: "<@UADA> 6h once lost phone", want: "policy allows lifetimes"},
		{name: "not allowed for this user", setup: func(w *world) { w.graph.FailNext(graphfake.OpCreatePass, 403, 1, "") },
			request: "<@UADA> 1h once lost phone", want: "does not allow"},
		{name: "throttled", setup: func(w *world) { w.graph.FailNext(graphfake.OpCreatePass, 429, 100, "0") },
			request: "<@UADA> 1h once lost phone", want: "throttling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.setup(w)
			w.tap(manager, tt.request)
			if tt.atSubmit {
				w.ephemeral(manager, tt.want)
				if n := len(w.slack.Messages(approvalChannel)); n != 0 {
					t.Fatal("a request the tenant refuses reached the approvers")
				}
				return
			}
			m := w.approvalMessage(1)
			w.click(approver, m, "Approve")
			w.ephemeral(approver, tt.want)
			w.waitFor("failed approval message", func() bool {
				cur := w.message(m.Ref())
				return strings.Contains(cur.PlainText(), "but failed") && strings.Contains(cur.PlainText(), tt.want) && len(cur.Buttons()) == 0
			})
			w.dm(manager, tt.want)
			if n := len(w.graph.Passes(adaEntraID)); n != 0 {
				t.Fatalf("%d passes exist after a failure", n)
			}
		})
	}
}

func TestRestartBetweenApprovalAndReveal(t *testing.T) {
	w := newWorld(t, withRedis)
	w.tap(manager, "<@UADA> 1h once lost phone")
	w.click(approver, w.approvalMessage(1), "Approve")
	dm := w.dm(ada, "asked for a Temporary Access Pass for you")
	w.restart()
	w.click(ada, dm, "Reveal pass")
	w.view(ada, w.codes(adaEntraID)[0])
}

func TestActivePassWarning(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once first")
	w.click(approver, w.approvalMessage(1), "Approve")
	w.dm(ada, "Reveal")
	w.tap(manager, "<@UADA> 1h once second")
	m := w.approvalMessage(2)
	if !strings.Contains(m.PlainText(), "already has an active Temporary Access Pass") {
		t.Fatalf("no warning about the active pass:\n%s", m.PlainText())
	}
}

func TestRequestForm(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "")
	form := w.view(manager, "Who is the pass for?")
	ack, err := w.slack.SubmitView(w.ctx(), manager, form.ID, map[string]map[string]slackfake.InputValue{
		"target": {"target": slackfake.SelectUser(ada)}, "lifetime": {"lifetime": slackfake.SelectOption("2h")},
		"usage": {"usage": slackfake.SelectOption("multi")}, "reason": {"reason": slackfake.TextInput("   ")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ack.ResponseAction != "errors" || !strings.Contains(string(ack.Payload), "reason is required") {
		t.Fatalf("empty reason ack = %s, want inline errors", ack.Payload)
	}
	_, err = w.slack.SubmitView(w.ctx(), manager, form.ID, map[string]map[string]slackfake.InputValue{
		"target": {"target": slackfake.SelectUser(ada)}, "lifetime": {"lifetime": slackfake.SelectOption("2h")},
		"usage": {"usage": slackfake.SelectOption("multi")}, "reason": {"reason": slackfake.TextInput("new hire")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := w.approvalMessage(1)
	if !strings.Contains(m.PlainText(), "2h, multi-use") || !strings.Contains(m.PlainText(), "new hire") {
		t.Fatalf("form request = %s", m.PlainText())
	}
	w.dm(manager, "sent to the approvers")
}

func TestHealthAndMetrics(t *testing.T) {
	w := newWorld(t)
	if code, body := w.get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, body := w.get("/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	w.tap(manager, "<@UADA> 1h once lost phone")
	w.click(approver, w.approvalMessage(1), "Approve")
	dm := w.dm(ada, "Reveal")
	w.click(ada, dm, "Reveal pass")
	code := w.codes(adaEntraID)[0]
	w.view(ada, code)
	w.waitFor("the reveal counted", func() bool { return w.revealOutcomes()["revealed"] == 1 })
	_, metrics := w.get("/metrics")
	for _, want := range []string{`tapbot_requests_total{outcome="submitted"} 1`, `tapbot_requests_total{outcome="issued"} 1`, "tapbot_ack_duration_seconds_count"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, code) {
		t.Fatal("a pass is in /metrics")
	}
}

// TestSimultaneousDecisionsIssueOnce has two approvers click at the same instant, and an approve
// race a deny: one decision wins, Graph is called at most once, the loser is told.
func TestSimultaneousDecisionsIssueOnce(t *testing.T) {
	for _, second := range []string{"Approve", "Deny"} {
		t.Run("Approve and "+second, func(t *testing.T) {
			w := newWorld(t, withRedis)
			w.tap(manager, "<@UADA> 1h once lost phone")
			m := w.approvalMessage(1)
			var wg sync.WaitGroup
			for _, c := range []struct{ who, label string }{{approver, "Approve"}, {groupie, second}} {
				wg.Go(func() {
					b := button(t, m, c.label)
					if _, err := w.slack.ClickButton(w.ctx(), c.who, m.Ref(), b.ActionID, b.Value); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			w.waitFor("one decision shown", func() bool {
				text := w.message(m.Ref()).PlainText()
				return strings.Contains(text, "Approved by") || strings.Contains(text, "Denied by")
			})
			loser := func() bool {
				for _, who := range []string{approver, groupie} {
					for _, e := range w.slack.Ephemerals(who) {
						if strings.Contains(e.PlainText(), "already") {
							return true
						}
					}
				}
				return false
			}
			w.waitFor("the slower approver told", loser)
			if n := w.graph.Calls(graphfake.OpCreatePass); n > 1 {
				t.Fatalf("Graph create called %d times, want at most once", n)
			}
			if strings.Contains(w.message(m.Ref()).PlainText(), "Approved by") {
				w.dm(ada, "Reveal")
				if n := len(w.graph.Passes(adaEntraID)); n != 1 {
					t.Fatalf("%d passes, want 1", n)
				}
			}
		})
	}
}

func TestHostileDirectoryNamesAreEscaped(t *testing.T) {
	w := newWorld(t)
	w.graph.AddUser(graphfake.User{ID: "00000000-0000-0000-0000-0000000000ee", UPN: "eve@example.com", Mail: "eve@example.com",
		DisplayName: "Eve <!here> <@UAPPROVER>"})
	w.tap(manager, "eve@example.com 1h once hostile name")
	m := w.approvalMessage(1)
	for _, v := range m.History {
		text := string(v.Blocks) + v.Text
		if strings.Contains(text, `\u003c!here\u003e`) || strings.Contains(text, "<!here>") || strings.Contains(text, `\u003c@UAPPROVER\u003e`) {
			t.Fatalf("a display name from Entra reached Slack unescaped: %s", text)
		}
	}
	if !strings.Contains(m.PlainText(), "Eve &lt;!here&gt;") {
		t.Fatalf("display name not shown escaped: %s", m.PlainText())
	}
}

// TestUndeliverableRevealIsReported: when Slack refuses the recipient's DM, the approver and
// requester hear of it instead of believing the pass arrived.
func TestUndeliverableRevealIsReported(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once lost phone")
	m := w.approvalMessage(1)
	w.slack.AddUser(slackfake.User{ID: ada, Name: "ada", Email: "ada@example.com", Deleted: true})
	w.click(approver, m, "Approve")
	w.ephemeral(approver, "could not send <@UADA> the message to reveal it")
	w.dm(manager, "could not send <@UADA> the message to reveal it")
	w.waitFor("approval message says the DM failed", func() bool {
		return strings.Contains(w.message(m.Ref()).PlainText(), "could not be delivered")
	})
	for _, v := range w.slack.Violations() {
		if !strings.Contains(v, "user_disabled") && !strings.Contains(v, "cannot_dm") {
			t.Errorf("unexpected Slack violation: %s", v)
		}
	}
	w.slack.ResetViolations()
}
