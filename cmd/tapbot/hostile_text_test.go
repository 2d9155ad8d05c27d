package main

import (
	"strings"
	"testing"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// People whose directory entries are as long and as hostile as Entra ID lets them be.
const (
	hostile        = "UHOSTILE" // in Slack and Entra ID
	hostileEntraID = "00000000-0000-0000-0000-0000000000ff"
	strangerID     = "00000000-0000-0000-0000-0000000000fe" // in Entra ID only
)

var (
	// hostileName is a display name of Entra's 256 characters that grows fivefold when escaped,
	// tries to mention the channel and to fake a line.
	hostileName = ("<!channel> *For:* é&" + strings.Repeat("&", 256))[:256]
	hostileUPN  = strings.Repeat("o&", 32) + "@" + strings.Repeat("d", 40) + ".example"
	// strangerUPN is 113 characters, the longest UPN Entra ID allows.
	strangerUPN = strings.Repeat("x", 64) + "@" + strings.Repeat("s", 40) + ".example"
)

// withHostilePeople adds a Slack user whose Entra entry has hostileName and hostileUPN, and an
// Entra ID user with no Slack account.
func withHostilePeople(w *world) {
	w.slack.AddUser(slackfake.User{ID: hostile, Name: "hostile", RealName: hostileName, Email: hostileUPN})
	w.graph.AddUser(graphfake.User{ID: hostileEntraID, UPN: hostileUPN, Mail: hostileUPN, DisplayName: hostileName})
	w.graph.AddUser(graphfake.User{ID: strangerID, UPN: strangerUPN, Mail: strangerUPN, DisplayName: hostileName})
}

// slackEscaped is text as Slack sends what a person typed in a slash command: &, < and >
// arrive as entities.
func slackEscaped(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TestHostileTextIsDelivered files requests whose reason, name and UPN grow when escaped, hold
// mentions and newlines, or are as long as Slack and Entra ID allow, and follows each through
// every surface: the approval message in each state, App Home for the approver and the
// requester, /tap status, the requester's DMs, the Reveal DM, the pass, an alert. Every message
// and view must be one Slack accepts (the fake refuses the rest and the world's cleanup fails the
// test), no hostile mention may reach Slack unescaped, and a reason stays on one line.
func TestHostileTextIsDelivered(t *testing.T) {
	forged := "new laptop\n*For:* <@UOUTSIDER>\n*Approved by:* <!channel> <!here> <!subteam^SAPPROVERS> <https://evil.example|sign in here>"
	tests := []struct {
		name string
		// slash is what follows /tap, exactly as Slack sends it; form, when slash is empty, is
		// the filled-in request form.
		slash     string
		form      form
		recipient string // who gets the Reveal DM
		fromHome  bool   // decide in App Home rather than on the approval message
		deny      bool
		report    bool     // the recipient says "this wasn't me" and the alert's Revoke is used
		shows     []string // what the approval message shows of the text, escaped and clipped
	}{
		{name: "564 ampersands typed in /tap, as the issue found", slash: "<@UADA> 1h once " + slackEscaped(strings.Repeat("&", 564)),
			recipient: ada, report: true, shows: []string{"*Reason:* &amp;&amp;", "&amp;…"}},
		{name: "2,000 ampersands in the form", form: form{target: ada, reason: strings.Repeat("&", 2000)},
			recipient: ada, fromHome: true, deny: true, shows: []string{"*Reason:* &amp;&amp;", "&amp;…"}},
		{name: "mentions, links and forged lines", slash: "<@UADA> 1h once " + forged, recipient: ada, fromHome: true,
			shows: []string{"*Reason:* new laptop *For:* &lt;@UOUTSIDER&gt; *Approved by:* &lt;!channel&gt; &lt;!here&gt;"}},
		{name: "the longest hostile name and UPN", form: form{target: hostile, reason: strings.Repeat("<&>", 666) + "é"},
			recipient: hostile, report: true, shows: []string{"<@UHOSTILE> · &lt;!channel&gt; *For:* é&amp;&amp;", "&amp;… (o&amp;o&amp;", "*Reason:* &lt;&amp;&gt;&lt;"}},
		{name: "no Slack account: the pass comes to the requester", slash: strangerUPN + " 1h once " + slackEscaped(strings.Repeat("<&\n", 280)),
			recipient: manager, shows: []string{"(" + strangerUPN + ")", "*Reason:* &lt;&amp; &lt;&amp;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withRedis, withHostilePeople)
			if tt.slash != "" {
				w.tap(manager, tt.slash)
				w.ephemeral(manager, "was sent to the approvers")
			} else {
				ack := w.submitForm(manager, w.openForm(manager), tt.form)
				if strings.Contains(string(ack.Payload), "errors") {
					t.Fatalf("the form was refused: %s", ack.Payload)
				}
				w.dm(manager, "was sent to the approvers")
			}
			m := w.approvalMessage(1)
			requireText(t, "the approval message", m.PlainText(), "*Reason:* ")
			id := button(t, m, "Approve").Value
			requireText(t, "the approver's Home tab", w.openHome(approver).PlainText(), "Waiting for your decision* (1)")
			w.homeButton(approver, "Approve", id)
			requireText(t, "the requester's Home tab", w.openHome(manager).PlainText(), "Your requests waiting for approval* (1)")
			requireText(t, "the requester's Home tab after reminding", w.homeClick(manager, "Remind approvers", id).PlainText(), "I reminded")
			w.tap(manager, "status")
			w.ephemeral(manager, "Waiting for approval")

			label := map[bool]string{false: "Approve", true: "Deny"}[tt.deny]
			if tt.fromHome {
				w.homeClick(approver, label, id)
			} else {
				w.click(approver, m, label)
			}
			if tt.deny {
				w.dm(manager, "was denied by <@UAPPROVER>")
				w.waitFor("the approval message says denied", func() bool {
					return strings.Contains(w.message(m.Ref()).PlainText(), "Denied by <@UAPPROVER>")
				})
			} else {
				w.waitFor("the Reveal DM", func() bool { return len(w.revealDMs(tt.recipient)) == 1 })
				dm := w.revealDMs(tt.recipient)[0]
				if tt.recipient != manager {
					w.dm(manager, "was approved by <@UAPPROVER>")
				}
				if tt.recipient != manager {
					requireText(t, "the Reveal DM", dm.PlainText(), "*Reason given:* ")
				}
				w.click(tt.recipient, dm, "Reveal pass")
				code := w.graph.AllPasses()[0].Code
				w.view(tt.recipient, code)
				w.waitFor("the DM says revealed", func() bool { return strings.Contains(w.message(dm.Ref()).PlainText(), "Revealed") })
				w.waitFor("the approval message says revealed", func() bool {
					return strings.Contains(w.message(m.Ref()).PlainText(), "revealed by <@"+tt.recipient+">")
				})
				if tt.report {
					w.click(tt.recipient, w.message(dm.Ref()), "This wasn't me")
					alert := w.waitMessage(approvalChannel, "says *this wasn't me*")
					w.click(approver, alert, "Revoke")
				} else {
					w.click(approver, w.message(m.Ref()), "Revoke")
				}
				w.dm(manager, "was revoked by <@UAPPROVER>")
				w.waitFor("the DM says revoked", func() bool { return strings.Contains(w.message(dm.Ref()).PlainText(), "revoked by <@UAPPROVER>") })
				w.waitFor("the approval message says revoked", func() bool {
					return strings.Contains(w.message(m.Ref()).PlainText(), "revoked by <@UAPPROVER>")
				})
			}
			requireText(t, "the approver's Home tab after deciding", w.openHome(approver).PlainText(), "Your recent decisions")
			w.tap(manager, "status")
			w.waitFor("/tap status after the decision", func() bool { return w.ephemerals(manager, "Your recent pass requests") == 2 })

			// What was too long is cut where it can be, and marked; nothing hostile reached Slack
			// as markup, and no reason made a line of its own.
			requireText(t, "the approval message", w.message(m.Ref()).PlainText(), tt.shows...)
			persisted := w.slack.AllPersistedText()
			for _, e := range w.slack.Ephemerals(manager) {
				persisted += "\n" + e.PlainText()
			}
			for _, v := range append(w.slack.Views(manager), append(w.slack.HomeViews(approver), w.slack.HomeViews(manager)...)...) {
				persisted += "\n" + v.PlainText()
			}
			for _, ping := range []string{"<!channel>", "<!here>", "<@UOUTSIDER>", "<https://evil", "\n*For:* &lt;@UOUTSIDER", "\n*Approved by:*"} {
				if strings.Contains(persisted, ping) {
					t.Errorf("Slack was sent %q from user text", ping)
				}
			}
		})
	}
}
