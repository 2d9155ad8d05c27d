package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// replies returns the thread replies under a message.
func (w *world) replies(ref slackfake.MessageRef) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range w.slack.Messages(ref.Channel) {
		if m.ThreadTS == ref.TS {
			out = append(out, m)
		}
	}
	return out
}

// approvalPost waits for the n-th approval message (1-based), not counting thread replies.
func (w *world) approvalPost(n int) slackfake.Message {
	w.t.Helper()
	var found slackfake.Message
	w.waitFor("approval message", func() bool {
		i := 0
		for _, m := range w.slack.Messages(approvalChannel) {
			if m.ThreadTS == "" {
				if i++; i == n {
					found = m
					return true
				}
			}
		}
		return false
	})
	return found
}

// clickEphemeral clicks label on an ephemeral message user sees.
func (w *world) clickEphemeral(user string, e slackfake.Ephemeral, label string) {
	w.t.Helper()
	for _, b := range e.Buttons() {
		if b.Text == label {
			if _, err := w.slack.ClickButton(w.ctx(), user, e.Ref(), b.ActionID, b.Value); err != nil {
				w.t.Fatalf("%s clicks %s: %v", user, label, err)
			}
			return
		}
	}
	w.t.Fatalf("ephemeral shows no %q button: %+v", label, e.Buttons())
}

// ephemerals counts the ephemerals user was shown that contain text.
func (w *world) ephemerals(user, text string) int {
	return len(slices.DeleteFunc(w.slack.Ephemerals(user), func(e slackfake.Ephemeral) bool { return !strings.Contains(e.PlainText(), text) }))
}

// TestReminders: a request nobody decides is bumped once, in a thread under its approval
// message that mentions who can decide, however many sweeps and replicas run; the requester can
// add one reminder of their own, from the confirmation or from App Home, and a second click is
// answered rather than sent.
func TestReminders(t *testing.T) {
	for name, opts := range map[string][]worldOption{"embedded": {withFastSweep}, "redis, two replicas": {withFastSweep, withRedis}} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, opts...)
			if w.redis != nil {
				w.startReplica()
			}
			w.tap(manager, "<@UADA> 1h once new laptop")
			conf := w.ephemeral(manager, "<@UADA> · Ada Lovelace (ada@example.com) was sent to the approvers")
			first := w.approvalMessage(1)

			w.advance(31 * time.Minute)
			w.waitFor("tapbot's reminder", func() bool { return len(w.replies(first.Ref())) > 0 })
			requireText(t, "tapbot's reminder", w.replies(first.Ref())[0].PlainText(), ":bell: Still waiting: <@UMANAGER>'s request for <@UADA>",
				"no decision for 31m", "<@UAPPROVER>, <!subteam^SAPPROVERS>, please approve or deny it above")

			// A second request, bumped by a later sweep: by then every sweep after the first bump
			// has had its chance to bump the first request again.
			w.tap(manager, "ext@example.com 1h once contractor")
			w.ephemeral(manager, "Contractor (ext@example.com) was sent to the approvers")
			second := w.approvalPost(2)
			w.advance(31 * time.Minute)
			w.waitFor("the second reminder", func() bool { return len(w.replies(second.Ref())) > 0 })

			// The requester's own reminder, from the confirmation; a second click is refused.
			w.clickEphemeral(manager, conf, "Remind approvers")
			w.ephemeral(manager, ":bell: I reminded <@UAPPROVER>, <!subteam^SAPPROVERS> about your request for <@UADA>")
			w.waitFor("the requester's reminder", func() bool { return len(w.replies(first.Ref())) == 2 })
			requireText(t, "the requester's reminder", w.replies(first.Ref())[1].PlainText(), "<@UMANAGER> is asking for a decision on this request")
			w.clickEphemeral(manager, conf, "Remind approvers")
			w.ephemeral(manager, "You already reminded the approvers about this request")

			// The requester's reminder for the second request, from App Home.
			w.openHome(manager)
			home := w.homeClick(manager, "Remind approvers", button(t, second, "Approve").Value)
			requireText(t, "requester's Home tab", home.PlainText(), ":bell: I reminded", "You reminded the approvers")
			w.waitFor("the requester's second reminder", func() bool { return len(w.replies(second.Ref())) == 2 })

			if n := len(w.replies(first.Ref())); n != 2 {
				t.Fatalf("%d replies under the first request, want tapbot's and the requester's", n)
			}
			// Only the requester may remind; and a decided request is not bumped.
			w.click(approver, first, "Deny")
			w.dm(manager, "was denied by <@UAPPROVER>")
			before := w.ephemerals(manager, "already denied")
			w.clickEphemeral(manager, conf, "Remind approvers")
			w.waitFor("the answer to a reminder of a denied request", func() bool { return w.ephemerals(manager, "already denied") > before })
		})
	}
}

// TestWatchAfterTheReveal: once the pass is revealed, tapbot watches the person's sign-in methods;
// when they register a passkey it tells the requester, notes it on the approval message and, with
// TAP_REVOKE_AFTER_REGISTRATION, deletes the rest of the pass. Methods that were there before
// the pass, and weak ones (a phone number), are not news.
func TestWatchAfterTheReveal(t *testing.T) {
	for _, tc := range []struct {
		revoke, replicas bool
	}{{false, false}, {true, false}, {true, true}} {
		revoke := tc.revoke
		t.Run("revoke="+strconv.FormatBool(revoke)+",redis replicas="+strconv.FormatBool(tc.replicas), func(t *testing.T) {
			opts := []worldOption{withFastSweep, withEnv("TAP_WATCH_INTERVAL", "1s"),
				withEnv("TAP_REVOKE_AFTER_REGISTRATION", strconv.FormatBool(revoke)), withoutStart}
			if tc.replicas {
				opts = append(opts, withRedis)
			}
			w := newWorld(t, opts...)
			w.graph.AddMethod(adaEntraID, graphfake.Method{Type: graphfake.MethodFIDO2, DisplayName: "Old key", CreatedAt: time.Now().Add(-30 * 24 * time.Hour)})
			w.graph.AddMethod(adaEntraID, graphfake.Method{Type: graphfake.MethodAuthenticator, DisplayName: "Old phone", NoCreatedTime: true})
			w.start()
			if tc.replicas {
				w.startReplica()
			}
			w.tap(manager, "<@UADA> 2h once new laptop")
			m := w.approvalMessage(1)
			w.click(approver, m, "Approve")
			dm := w.dm(ada, "asked for a Temporary Access Pass for you")
			w.click(ada, dm, "Reveal pass")
			w.view(ada, w.codes(adaEntraID)[0])
			w.waitFor("the reveal recorded", func() bool { return strings.Contains(w.message(m.Ref()).PlainText(), "revealed by <@UADA>") })
			calls := w.graph.Calls(graphfake.OpListMethods)
			w.waitFor("a look at Ada's methods after the reveal", func() bool { return w.graph.Calls(graphfake.OpListMethods) > calls })

			w.graph.AddMethod(adaEntraID, graphfake.Method{Type: graphfake.MethodPhone})
			w.graph.AddMethod(adaEntraID, graphfake.Method{Type: graphfake.MethodFIDO2, DisplayName: "YubiKey 5 NFC"})
			news := w.dm(manager, "registered a passkey or security key (YubiKey 5 NFC) with their Temporary Access Pass").PlainText()
			if strings.Contains(news, "Old") {
				t.Fatalf("a method from before the pass was reported: %s", news)
			}
			w.waitFor("the approval message notes it", func() bool {
				return strings.Contains(w.message(m.Ref()).PlainText(), ":key: ada@example.com registered a passkey or security key (YubiKey 5 NFC)")
			})
			pass := w.graph.Passes(adaEntraID)[0]
			if revoke {
				requireText(t, "the requester's news", news, "tapbot deleted the rest of the pass in Entra ID")
				if !pass.Deleted {
					t.Fatal("the pass was not deleted in Entra ID")
				}
				w.waitFor("the approval message says revoked", func() bool {
					return strings.Contains(w.message(m.Ref()).PlainText(), "revoked by tapbot")
				})
				w.waitFor("Ada's DM says revoked", func() bool {
					return strings.Contains(w.message(dm.Ref()).PlainText(), "This pass was revoked by tapbot")
				})
			} else {
				requireText(t, "the requester's news", news, "The pass stays valid until")
				if pass.Deleted {
					t.Fatal("the pass was deleted although TAP_REVOKE_AFTER_REGISTRATION is off")
				}
			}
			w.waitFor("the audit trail has it", func() bool { return strings.Contains(w.logs.String(), `"event":"method_registered"`) })
			if n := strings.Count(w.logs.String(), `"event":"method_registered"`); n != 1 {
				t.Fatalf("the registration was recorded %d times, want once", n)
			}
		})
	}
}

// TestWatchWithoutPermission: without UserAuthenticationMethod.Read.All tapbot stops watching and
// says in its log what to grant; the reveal itself is unaffected.
func TestWatchWithoutPermission(t *testing.T) {
	w := newWorld(t, withFastSweep, withEnv("TAP_WATCH_INTERVAL", "1s"), withoutStart)
	w.graph.SetRoles(slices.DeleteFunc(slices.Clone(graphfake.DefaultRoles), func(r string) bool { return r == "UserAuthenticationMethod.Read.All" })...)
	w.start()
	w.tap(manager, "<@UADA> 1h once new laptop")
	w.click(approver, w.approvalMessage(1), "Approve")
	dm := w.dm(ada, "asked for a Temporary Access Pass for you")
	w.click(ada, dm, "Reveal pass")
	w.view(ada, w.codes(adaEntraID)[0])
	w.graph.AddMethod(adaEntraID, graphfake.Method{Type: graphfake.MethodFIDO2})
	w.waitFor("the log says what to grant", func() bool {
		return strings.Contains(w.logs.String(), "Grant the app UserAuthenticationMethod.Read.All, or set TAP_WATCH_INTERVAL=off")
	})
	for _, m := range w.slack.Messages(w.slack.DMChannel(manager)) {
		if strings.Contains(m.PlainText(), "registered") {
			t.Fatalf("told the requester of a registration tapbot could not see: %s", m.PlainText())
		}
	}
}

// TestRemindWhereTapbotCannotPost: /tap typed in a conversation tapbot is not in (a DM between two
// people, say). The confirmation comes through the command's response_url, and the answer to its
// Remind button through the click's own, since chat.postEphemeral is refused there.
func TestRemindWhereTapbotCannotPost(t *testing.T) {
	w := newWorld(t)
	w.slack.SetBotMember(general, false)
	w.tap(manager, "<@UADA> 1h once new laptop")
	conf := w.ephemeral(manager, "<@UADA> · Ada Lovelace (ada@example.com) was sent to the approvers")
	first := w.approvalMessage(1)
	w.clickEphemeral(manager, conf, "Remind approvers")
	w.ephemeral(manager, ":bell: I reminded <@UAPPROVER>, <!subteam^SAPPROVERS> about your request for <@UADA>")
	w.waitFor("the requester's reminder", func() bool { return len(w.replies(first.Ref())) == 1 })
	w.clickEphemeral(manager, conf, "Remind approvers")
	w.ephemeral(manager, "You already reminded the approvers about this request")
}
