package main

import (
	"context"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// withAuditChannel posts every audit event, in order, in an audit channel, so a test can wait
// for a late event and then know that an alarm raised before it would be there too.
func withAuditChannel(w *world) {
	w.slack.AddChannel(auditChan, approver)
	w.env["TAP_AUDIT_CHANNEL"] = auditChan
}

// audited waits until the audit channel shows event for the request.
func (w *world) audited(event, requestID string) {
	w.t.Helper()
	w.waitFor("audit event "+event, func() bool {
		for _, m := range w.slack.Messages(auditChan) {
			if text := m.PlainText(); strings.Contains(text, "`"+event+"`") && strings.Contains(text, requestID) {
				return true
			}
		}
		return false
	})
}

// alarmed reports whether the audit channel shows the "someone else may have the pass" alarm.
func (w *world) alarmed() bool {
	for _, m := range w.slack.Messages(auditChan) {
		if strings.Contains(m.PlainText(), "Someone else may have it") {
			return true
		}
	}
	return false
}

// issuedToAda runs a request for Ada through approval and returns her DM and the request ID.
func (w *world) issuedToAda() (slackfake.Message, string) {
	w.t.Helper()
	w.tap(manager, "<@UADA> 1h once lost phone")
	w.click(approver, w.approvalMessage(1), "Approve")
	dm := w.dm(ada, "asked for a Temporary Access Pass for you")
	return dm, button(w.t, dm, "Reveal pass").Value
}

// revealAnswer clicks Reveal pass on dm as ada and returns the window tapbot then shows her: the
// first update of the modal the click opened (the pass, or why not).
func (w *world) revealAnswer(dm slackfake.Message) slackfake.View {
	w.t.Helper()
	updates := func() []slackfake.View {
		var out []slackfake.View
		for _, v := range w.slack.Views(ada) {
			if v.Event == "update" {
				out = append(out, v)
			}
		}
		return out
	}
	before := len(updates())
	w.click(ada, dm, "Reveal pass")
	w.waitFor("the reveal window's answer", func() bool { return len(updates()) > before })
	return updates()[before]
}

// isScript matches a Lua script call (EVALSHA, or EVAL after NOSCRIPT) or, for stores that use
// plain commands, one of names, with an argument that starts with prefix.
func isScript(prefix string, names ...string) redistest.Match {
	return func(cmd []string) bool {
		for _, n := range append([]string{"evalsha", "eval"}, names...) {
			if redistest.HasArg(n, prefix)(cmd) {
				return true
			}
		}
		return false
	}
}

// TestLostRedisRepliesDoNotLoseThePass loses Redis's reply to one write of a request's life,
// after Redis ran it: go-redis sends the write again on a fresh connection, and tapbot must take
// the second run's answer for what the first one did. Otherwise a reveal finds its own claim or
// its own taken pass and gives up (the pass unseen but reported taken, the alarm raised, the
// live pass left in Entra ID), a person is locked out by their own request's lock, or a click is
// dropped as a duplicate of itself.
func TestLostRedisRepliesDoNotLoseThePass(t *testing.T) {
	tests := []struct {
		name string
		// match picks the write whose reply is lost; it is armed before act.
		match  func(w *world, id string) redistest.Match
		before bool // arm the fault before /tap instead of before the reveal click
	}{
		{name: "the take of the sealed pass", match: func(w *world, id string) redistest.Match {
			return isScript("{tapbot}:pass:"+id, "getdel")
		}},
		{name: "the move to revealing", match: func(w *world, id string) redistest.Match {
			return func(cmd []string) bool {
				return isScript("{tapbot}:req:"+id)(cmd) && strings.Contains(strings.Join(cmd, " "), `"state":"revealing"`)
			}
		}},
		{name: "the one-request-per-person lock", before: true, match: func(w *world, id string) redistest.Match {
			return isScript("{tapbot}:key:target:" + adaEntraID)
		}},
		{name: "the deduplication of the /tap envelope", before: true, match: func(w *world, id string) redistest.Match {
			return isScript("{tapbot}:key:envelope:", "set")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withRedisProxy, withAuditChannel, withSlackSpeed(20))
			var dropped <-chan struct{}
			if tt.before {
				dropped = w.proxy.DropReply(tt.match(w, ""))
			}
			dm, id := w.issuedToAda()
			if !tt.before {
				dropped = w.proxy.DropReply(tt.match(w, id))
			}
			w.click(ada, dm, "Reveal pass")
			code := w.livePasses(adaEntraID)[0].Code
			w.view(ada, code)
			select {
			case <-dropped:
			default:
				t.Fatal("no reply was lost: the test tested nothing")
			}
			w.waitFor("the DM says revealed", func() bool {
				return strings.Contains(w.message(dm.Ref()).PlainText(), "Revealed")
			})
			w.audited("revealed", id)
			if w.alarmed() {
				t.Fatal("an alarm says someone else may have the pass; nobody else took it")
			}
			if n := w.modalsShowing(ada, code); n != 1 {
				t.Fatalf("the pass was shown %d times, want once", n)
			}
		})
	}
}

// TestRevealOfAPassGoneFromTheStore: a request whose sealed pass is no longer in Redis (it was
// lost in a restart or a failover) cannot show it. The pass is deleted in Entra ID, the
// recipient and requester are told that nobody saw it and to ask again, and no alarm says that
// someone else may have it.
func TestRevealOfAPassGoneFromTheStore(t *testing.T) {
	w := newWorld(t, withRedis, withAuditChannel, withSlackSpeed(20))
	dm, id := w.issuedToAda()
	admin := w.redisAdmin()
	defer admin.Close()
	if n, err := admin.Del(context.Background(), "{tapbot}:pass:"+id).Result(); err != nil || n != 1 {
		t.Fatalf("deleting the sealed pass in Redis = %d, %v", n, err)
	}
	answer := w.revealAnswer(dm)
	w.waitFor("the DM no longer offers the pass", func() bool { return labels(w.message(dm.Ref())) == "" })
	if live := w.livePasses(adaEntraID); len(live) != 0 {
		t.Fatalf("a pass nobody can see is still live in Entra ID: %+v", live)
	}
	w.audited("revoked", id)
	if w.alarmed() {
		t.Fatal("an alarm says someone else may have the pass; nobody took it")
	}
	if !strings.Contains(answer.PlainText(), "nobody has seen it") {
		t.Fatalf("ada reads %q; want the truth: nobody has seen it", answer.PlainText())
	}
	w.dm(manager, "nobody saw it")
}

// TestUnclearModalUpdateCountsAsShown: Slack applies the update that shows the pass but the
// connection is reset before its answer. The person may be looking at the pass, so it must not
// go back to be shown again: the reveal counts, and the person is told what to do if they did
// not see it.
func TestUnclearModalUpdateCountsAsShown(t *testing.T) {
	w := newWorld(t)
	dm, _ := w.issuedToAda()
	w.slack.ResetAfterApplying("views.update", 1)
	w.click(ada, dm, "Reveal pass")
	code := w.livePasses(adaEntraID)[0].Code
	w.view(ada, code) // Slack did show it
	w.waitFor("the DM says revealed", func() bool {
		return strings.Contains(w.message(dm.Ref()).PlainText(), "Revealed")
	})
	b := button(t, dm, "Reveal pass")
	if _, err := w.slack.ClickStaleButton(w.ctx(), ada, dm.Ref(), b.ActionID, b.Value); err != nil {
		t.Fatal(err)
	}
	w.view(ada, "already revealed")
	if n := w.modalsShowing(ada, code); n != 1 {
		t.Fatalf("the pass was shown %d times, want once", n)
	}
	w.ephemeral(ada, "Slack did not confirm that your pass reached your screen")
}

// TestPassThatCannotBePutBackIsDeleted: Slack refuses the window, so the pass must go back to
// Redis, but Redis cannot be reached for it. Nobody will ever see that pass, so it is deleted in
// Entra ID, and the recipient and requester are told to ask for a new one.
func TestPassThatCannotBePutBackIsDeleted(t *testing.T) {
	w := newWorld(t, withRedisProxy, withSlackSpeed(20))
	dm, id := w.issuedToAda()
	w.slack.FailNext("views.update", "not_found", 1)
	// The take goes through; whatever comes after it for this pass does not.
	refused, stop := w.proxy.Refuse(func(cmd []string) bool {
		return redistest.HasArg("", "{tapbot}:pass:"+id)(cmd) || redistest.HasArg("", "{tapbot}:claim:"+id)(cmd)
	}, 1)
	defer stop()
	w.click(ada, dm, "Reveal pass")
	<-refused
	w.waitFor("the pass deleted in Entra ID", func() bool { return len(w.livePasses(adaEntraID)) == 0 })
	w.waitFor("the DM no longer offers the pass", func() bool { return labels(w.message(dm.Ref())) == "" })
	w.ephemeral(ada, "deleted in Entra ID")
	w.dm(manager, "deleted in Entra ID")
}

// TestRevealWaitsForTheReplica: with asynchronous replication a failover can promote a replica
// that never saw a reveal's claim, and show the pass again. While no replica acknowledges the
// claim the pass is not shown and stays sealed; once the replica answers, it is shown once.
func TestRevealWaitsForTheReplica(t *testing.T) {
	w := newWorld(t, withRedisReplica)
	dm, _ := w.issuedToAda()
	code := w.livePasses(adaEntraID)[0].Code
	w.replica.Pause()
	resumed := false
	defer func() {
		if !resumed {
			w.replica.Resume()
		}
	}()
	answer := w.revealAnswer(dm)
	w.replica.Resume()
	resumed = true
	if n := w.modalsShowing(ada, code); n != 0 {
		t.Fatalf("the pass was shown while no replica had its claim")
	}
	if !strings.Contains(answer.PlainText(), "could not confirm your claim on its replica") {
		t.Fatalf("ada reads %q; want to hear to try again", answer.PlainText())
	}
	w.click(ada, dm, "Reveal pass")
	w.view(ada, code)
	if n := w.modalsShowing(ada, code); n != 1 {
		t.Fatalf("the pass was shown %d times, want once", n)
	}
}

// TestKeyRotationAcrossReplicas runs two replicas on one Redis whose key lists differ, as during
// a rolling deploy of a new TAP_ENCRYPTION_KEY: the new replica seals with NEW, and the click
// reaches the other one. A replica that knows only OLD must leave the pass sealed and revealable
// ("temporarily unavailable"), not delete it; once the first phase of the documented rotation
// (OLD,NEW everywhere) is done, every replica opens it.
func TestKeyRotationAcrossReplicas(t *testing.T) {
	const oldKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	const newKey = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
	for _, tt := range []struct {
		name, otherKeys string
		opens           bool
	}{
		{"old replica knows only OLD", oldKey, false},
		{"old replica went through phase one", oldKey + "," + newKey, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withRedis, withSlackSpeed(20), withEnv("TAP_ENCRYPTION_KEY", newKey+","+oldKey))
			sealer := w.slack.TotalConnections()
			w.slack.RouteTo(sealer)
			dm, _ := w.issuedToAda()
			w.env["TAP_ENCRYPTION_KEY"] = tt.otherKeys
			w.startReplica()
			other := w.slack.TotalConnections()
			code := w.livePasses(adaEntraID)[0].Code

			w.slack.RouteTo(other)
			answer := w.revealAnswer(dm)
			if !tt.opens {
				if n := w.modalsShowing(ada, code); n != 0 {
					t.Fatal("a replica without the key showed the pass")
				}
				if live := w.livePasses(adaEntraID); len(live) != 1 {
					t.Fatalf("%d live passes; the pass must stay live in Entra ID", len(live))
				}
				if labels(w.message(dm.Ref())) != "Reveal pass,This wasn't me" {
					t.Fatalf("the DM no longer offers the pass: %s", w.message(dm.Ref()).PlainText())
				}
				if !strings.Contains(answer.PlainText(), "temporarily unavailable") {
					t.Fatalf("ada reads %q; want temporarily unavailable", answer.PlainText())
				}
				if !strings.Contains(w.logs.String(), "does not open with this replica's TAP_ENCRYPTION_KEY") {
					t.Fatal("the replica did not log a key problem")
				}
				w.slack.RouteTo(sealer)
				w.click(ada, dm, "Reveal pass")
			}
			w.view(ada, code)
			w.waitFor("the DM says revealed", func() bool {
				return strings.Contains(w.message(dm.Ref()).PlainText(), "Revealed")
			})
			if n := w.modalsShowing(ada, code); n != 1 {
				t.Fatalf("the pass was shown %d times, want once", n)
			}
		})
	}
}
