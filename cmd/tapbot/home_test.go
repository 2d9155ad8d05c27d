package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/bot"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// openHome has user open tapbot's Home tab and waits for tapbot to publish it.
func (w *world) openHome(user string) slackfake.View {
	w.t.Helper()
	before := len(w.slack.HomeViews(user))
	if _, err := w.slack.OpenAppHome(w.ctx(), user, "home"); err != nil {
		w.t.Fatalf("%s opens App Home: %v", user, err)
	}
	return w.nextHome(user, before)
}

// nextHome waits for the Home tab published for user after the first before ones.
func (w *world) nextHome(user string, before int) slackfake.View {
	w.t.Helper()
	w.waitFor("the Home tab of "+user, func() bool { return len(w.slack.HomeViews(user)) > before })
	v, _ := w.slack.HomeView(user)
	return v
}

// homeButton returns the button labelled label for request id in user's Home tab.
func (w *world) homeButton(user, label, id string) slackfake.Button {
	w.t.Helper()
	for _, b := range w.slack.HomeButtons(user) {
		if b.Text == label && b.Value == id {
			return b
		}
	}
	w.t.Fatalf("%s's Home tab shows no %q button for %s; buttons: %+v", user, label, id, w.slack.HomeButtons(user))
	return slackfake.Button{}
}

// homeClick clicks label for request id in user's Home tab and returns the Home tab tapbot
// publishes in answer.
func (w *world) homeClick(user, label, id string) slackfake.View {
	w.t.Helper()
	b := w.homeButton(user, label, id)
	before := len(w.slack.HomeViews(user))
	if _, err := w.slack.ClickHomeButton(w.ctx(), user, b.ActionID, b.Value); err != nil {
		w.t.Fatalf("%s clicks %s in App Home: %v", user, label, err)
	}
	return w.nextHome(user, before)
}

func requireText(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Fatalf("%s lacks %q:\n%s", what, want, text)
		}
	}
}

// TestAppHomeDecides: each person's Home tab lists what they may decide and why, their own
// waiting requests and their recent decisions; Approve in App Home issues the pass exactly as
// the channel button does, and a stale Home tab cannot decide twice.
func TestAppHomeDecides(t *testing.T) {
	for name, opts := range map[string][]worldOption{"embedded": nil, "redis": {withRedis}} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, opts...)
			w.tap(manager, "<@UADA> 2h once new laptop")
			// The confirmation goes out once the request knows its approval message; App Home
			// lists only requests the approvers can see.
			w.ephemeral(manager, "sent to the approvers")
			m := w.approvalMessage(1)
			id := button(t, m, "Approve").Value

			home := w.openHome(approver)
			requireText(t, "approver's Home tab", home.PlainText(), "Waiting for your decision* (1)", "<@UADA>", "Ada Lovelace",
				"new laptop", "2h, one-time", "Why you:* you are listed in TAP_APPROVERS.")
			stale := w.openHome(groupie)
			requireText(t, "groupie's Home tab", stale.PlainText(), "you are in <!subteam^SAPPROVERS>, which is listed in TAP_APPROVERS.")
			w.homeButton(groupie, "Approve", id)
			for _, who := range []string{manager, ada, outsider} { // the requester, the target, a stranger
				v := w.openHome(who)
				if strings.Contains(v.PlainText(), "Why you") || slices.ContainsFunc(w.slack.HomeButtons(who), func(b slackfake.Button) bool { return b.Text == "Approve" }) {
					t.Fatalf("%s is offered a decision:\n%s", who, v.PlainText())
				}
			}
			mine := w.openHome(manager)
			requireText(t, "requester's Home tab", mine.PlainText(), "Your requests waiting for approval* (1)", "Who can decide: <@UAPPROVER>, <!subteam^SAPPROVERS>.")
			w.homeButton(manager, "Remind approvers", id)

			after := w.homeClick(approver, "Approve", id)
			requireText(t, "approver's Home tab after approving", after.PlainText(), "You approved the request for <@UADA>",
				"Waiting for your decision* (0)", "Your recent decisions", "Approved", id)
			w.dm(ada, "asked for a Temporary Access Pass for you")
			w.dm(manager, "was approved by <@UAPPROVER>")
			w.waitFor("approval message updated", func() bool {
				cur := w.message(m.Ref())
				return strings.Contains(cur.PlainText(), "Approved by <@UAPPROVER>") && labels(cur) == "Revoke"
			})

			// Groupie's Home tab still shows the old buttons: the click is answered, not acted on.
			again := w.homeClick(groupie, "Approve", id)
			requireText(t, "stale Home tab answer", again.PlainText(), "This request was already approved.", "Waiting for your decision* (0)")
			if n := len(w.graph.Passes(adaEntraID)); n != 1 {
				t.Fatalf("%d passes created, want 1", n)
			}
		})
	}
}

// TestAppHomeSaysWhyForManagersAndProtectedApprovers covers the other two reasons a person
// decides: being the target's manager, and being a protected approver for a privileged account.
func TestAppHomeSaysWhyForManagersAndProtectedApprovers(t *testing.T) {
	w := newWorld(t, withTrustPeople, withEnv("TAP_ROUTE_TO_MANAGER", "true"), withEnv("TAP_PROTECTED_APPROVERS", security), withoutStart)
	w.graph.SetManager(adaEntraID, "00000000-0000-0000-0000-0000000000cc")
	w.graph.AssignRole(extEntraID, "Privileged Authentication Administrator")
	w.start()
	w.tap(manager, "<@UADA> 1h once new laptop")
	w.ephemeral(manager, "Ada Lovelace (ada@example.com) was sent to the approvers")
	ask := w.dm(mgr, "You are asked as the manager of ada@example.com")
	id := button(t, ask, "Approve").Value
	w.tap(manager, "ext@example.com 1h once contractor lost key")
	w.ephemeral(manager, "Contractor (ext@example.com) was sent to the approvers")

	requireText(t, "manager's Home tab", w.openHome(mgr).PlainText(),
		"Why you:* you are the manager of ada@example.com in Entra ID, who is asked first (TAP_ROUTE_TO_MANAGER).")
	sec := w.openHome(security)
	requireText(t, "protected approver's Home tab", sec.PlainText(), "Waiting for your decision* (1)",
		"this is a privileged account (roles: Privileged Authentication Administrator), and you are a protected approver (TAP_PROTECTED_APPROVERS).")
	requireText(t, "requester's Home tab", w.openHome(manager).PlainText(), "Asked first: <@UMGR>, the manager in Entra ID.", "Who can decide: <@USECURITY>.")

	// The manager denies from App Home; the DM they were asked in is updated.
	after := w.homeClick(mgr, "Deny", id)
	requireText(t, "manager's Home tab after denying", after.PlainText(), "You denied the request", "Denied")
	w.waitFor("the manager's DM updated", func() bool { return strings.Contains(w.message(ask.Ref()).PlainText(), "Denied by <@UMGR>") })
	w.dm(manager, "was denied by <@UMGR>")
}

// forgedHomeClick sends a block_actions payload from a Home tab as a tampered client might:
// view is the whole view object.
func (w *world) forgedHomeClick(user, actionID, value string, view map[string]any) {
	w.t.Helper()
	payload := map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user}, "trigger_id": "forged.trigger",
		"container": map[string]any{"type": "view", "view_id": view["id"]},
		"view":      view,
		"actions":   []any{map[string]any{"type": "button", "action_id": actionID, "block_id": "decide", "value": value}},
	}
	if _, err := w.slack.SendEnvelope(w.ctx(), "interactive", false, payload); err != nil {
		w.t.Fatalf("forged Home tab click: %v", err)
	}
}

// homeViewObject is a Home tab as a payload carries it, showing the given buttons.
func homeViewObject(owner string, buttons ...map[string]any) map[string]any {
	els := []any{}
	for _, b := range buttons {
		els = append(els, b)
	}
	return map[string]any{
		"id": "VFORGED1", "type": "home", "private_metadata": "home:" + owner, "callback_id": bot.CallbackHome,
		"blocks": []any{map[string]any{"type": "actions", "block_id": "decide", "elements": els}},
	}
}

func homeApprove(id string) map[string]any {
	return map[string]any{"type": "button", "action_id": bot.ActionHomeApprove, "value": id, "text": map[string]any{"type": "plain_text", "text": "Approve"}}
}

// TestForgedHomeClicksHaveNoEffect: a click is taken from App Home only from a Home tab that
// tapbot published for the clicker and that shows that button for that request; and then the
// service still checks who may decide.
func TestForgedHomeClicksHaveNoEffect(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once first")
	w.ephemeral(manager, "sent to the approvers")
	m := w.approvalMessage(1)
	id := button(t, m, "Approve").Value
	other := "tap_aaaaaaaaaaaaaaaa"

	refused := []struct {
		name, user, action, value string
		view                      map[string]any
		wantLog                   string
	}{
		{"someone else's Home tab", groupie, bot.ActionHomeApprove, id, homeViewObject(approver, homeApprove(id)),
			"the Home tab was not published for the person clicking"},
		{"a request the tab does not show", approver, bot.ActionHomeApprove, id, homeViewObject(approver, homeApprove(other)),
			"the Home tab does not show that button for that request"},
		{"a modal, not a Home tab", approver, bot.ActionHomeApprove, id,
			func() map[string]any { v := homeViewObject(approver, homeApprove(id)); v["type"] = "modal"; return v }(),
			"it does not come from a Home tab"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			w.forgedHomeClick(tt.user, tt.action, tt.value, tt.view)
			w.waitFor("the refusal logged", func() bool { return strings.Contains(w.logs.String(), tt.wantLog) })
		})
	}
	// The approval message's button sent from a view is refused: App Home has its own buttons.
	w.forgedHomeClick(approver, bot.ActionApprove, id, homeViewObject(approver, map[string]any{
		"type": "button", "action_id": bot.ActionApprove, "value": id, "text": map[string]any{"type": "plain_text", "text": "Approve"}}))
	w.waitFor("the refusal logged", func() bool {
		return strings.Contains(w.logs.String(), "refused an Approve/Deny click that does not come from a message")
	})
	// A Home tab button on a message is refused too.
	w.forgedClick(approver, approvalChannel, m.TS, bot.ActionHomeApprove, id)
	w.waitFor("the refusal logged", func() bool { return strings.Contains(w.logs.String(), "it does not come from a Home tab") })

	// A well-formed Home tab click by someone who may not decide reaches the service, which
	// refuses it; tapbot says so in their Home tab.
	before := len(w.slack.HomeViews(outsider))
	w.forgedHomeClick(outsider, bot.ActionHomeApprove, id, homeViewObject(outsider, homeApprove(id)))
	requireText(t, "outsider's Home tab", w.nextHome(outsider, before).PlainText(), "You may not approve or deny this request")

	if n := len(w.graph.AllPasses()); n != 0 {
		t.Fatalf("forged Home tab clicks created %d passes", n)
	}
	if labels(w.message(m.Ref())) != "Approve,Deny" {
		t.Fatalf("a forged Home tab click changed the request:\n%s", w.message(m.Ref()).PlainText())
	}
}

// TestManifestEnablesAppHome keeps manifest.yaml in step with what the bot handles: the Home tab
// is on and the app subscribes to exactly the events tapbot handles.
func TestManifestEnablesAppHome(t *testing.T) {
	raw, err := os.ReadFile("../../manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	entries := manifestEntries(string(raw))
	if v := entries["features.app_home.home_tab_enabled"]; len(v) != 1 || v[0] != "true" {
		t.Fatalf("features.app_home.home_tab_enabled = %v, want true", v)
	}
	if v := entries["features.app_home.messages_tab_enabled"]; len(v) != 1 || v[0] != "true" {
		t.Fatalf("features.app_home.messages_tab_enabled = %v, want true (tapbot DMs people)", v)
	}
	if got := entries["settings.event_subscriptions.bot_events"]; !slices.Equal(got, bot.Events) {
		t.Fatalf("manifest bot_events = %v, want exactly %v", got, bot.Events)
	}
}

// manifestEntries reads a YAML manifest's scalar values and list items by dotted key path
// (comments and blank lines skipped); enough for manifest.yaml.
func manifestEntries(manifest string) map[string][]string {
	out := map[string][]string{}
	var path []string
	var indents []int
	for _, line := range strings.Split(manifest, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if item, ok := strings.CutPrefix(trimmed, "- "); ok {
			key := strings.Join(path, ".")
			out[key] = append(out[key], strings.Trim(strings.TrimSpace(item), `"'`))
			continue
		}
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents, path = indents[:len(indents)-1], path[:len(path)-1]
		}
		key, value, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		indents, path = append(indents, indent), append(path, key)
		if value = strings.Trim(strings.TrimSpace(value), `"'`); value != "" {
			out[strings.Join(path, ".")] = append(out[strings.Join(path, ".")], value)
		}
	}
	return out
}
