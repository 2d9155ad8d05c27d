package main

import (
	"strings"
	"testing"
)

// forgedClick sends a block_actions payload no real Slack client would: a tampered or scripted
// one, delivered over the real socket.
func (w *world) forgedClick(user, channel, ts, actionID, value string) {
	w.t.Helper()
	payload := map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user}, "trigger_id": "forged.trigger",
		"channel":   map[string]any{"id": channel},
		"container": map[string]any{"type": "message", "channel_id": channel, "message_ts": ts},
		"actions":   []any{map[string]any{"type": "button", "action_id": actionID, "block_id": "decision", "value": value}},
	}
	if _, err := w.slack.SendEnvelope(w.ctx(), "interactive", false, payload); err != nil {
		w.t.Fatalf("forged click: %v", err)
	}
}

func TestForgedAndMalformedInputHasNoEffect(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once first")
	a := w.approvalMessage(1)
	w.tap(manager, "ext@example.com 1h once second")
	b := w.approvalMessage(2)
	// The confirmation goes out once the request knows where its approval message is.
	w.ephemeral(manager, "Contractor (ext@example.com) was sent to the approvers")
	bID := button(t, b, "Approve").Value

	tests := []struct {
		name          string
		action, value string
		onMessage     string
		wantLog       string
		wantEphemeral string
	}{
		{"unknown action", "tap_delete_everything", bID, a.TS, "ignored unknown socket-mode envelope", ""},
		{"tampered request ID", "tap_approve", "tap_../../../../etc", a.TS, "forged request ID", ""},
		{"request that does not exist", "tap_approve", "tap_aaaaaaaaaaaaaaaa", a.TS, "", "no longer exists"},
		{"another request's ID on this message", "tap_approve", bID, a.TS, "belongs to another message", "does not belong to this request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.forgedClick(approver, approvalChannel, tt.onMessage, tt.action, tt.value)
			if tt.wantLog != "" {
				w.waitFor("the refusal logged", func() bool { return strings.Contains(w.logs.String(), tt.wantLog) })
			}
			if tt.wantEphemeral != "" {
				w.ephemeral(approver, tt.wantEphemeral)
			}
		})
	}
	for _, m := range []string{a.TS, b.TS} {
		cur := w.message(w.approvalMessage(1).Ref())
		if m == b.TS {
			cur = w.message(b.Ref())
		}
		if labels(cur) != "Approve,Deny" {
			t.Fatalf("a forged click changed a request: %s", cur.PlainText())
		}
	}
	if n := len(w.graph.AllPasses()); n != 0 {
		t.Fatalf("forged clicks created %d passes", n)
	}

	// Oversized input is refused with a reason, not truncated and not silently dropped.
	ack := w.tap(manager, "<@UADA> 1h once "+strings.Repeat("very long reason ", 300))
	if !strings.Contains(ackText(ack), "too long") {
		t.Fatalf("oversized /tap answered %q", ackText(ack))
	}
	if n := len(w.slack.Messages(approvalChannel)); n != 2 {
		t.Fatalf("oversized input reached the approvers: %d messages", n)
	}
}

// TestKeyRotation issues a pass under one key and reveals it after the key was rotated: the first
// key encrypts, all keys decrypt. A replica started without the key that sealed a pass leaves it
// sealed and revealable ("temporarily unavailable") rather than destroying it, and a replica
// with the key back shows it.
func TestKeyRotation(t *testing.T) {
	const oldKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	const newKey = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
	// Four starts spend four apps.connections.open (Tier 1: about one a minute).
	w := newWorld(t, withRedis, withSlackSpeed(60))
	w.tap(manager, "<@UADA> 1h once before rotation")
	w.click(approver, w.approvalMessage(1), "Approve")
	first := w.dm(ada, "before rotation")

	w.env["TAP_ENCRYPTION_KEY"] = newKey + "," + oldKey
	w.restart()
	w.click(ada, first, "Reveal pass")
	w.view(ada, w.livePasses(adaEntraID)[0].Code)

	w.tap(manager, "ext@example.com 1h once after rotation")
	w.click(approver, w.approvalMessage(2), "Approve")
	second := w.dm(manager, "could not be notified, so the pass comes to you")
	w.env["TAP_ENCRYPTION_KEY"] = oldKey // the key that sealed it is missing
	w.restart()
	w.click(manager, second, "Reveal pass")
	w.waitFor("the reveal window's answer", func() bool {
		for _, v := range w.slack.Views(manager) {
			if v.Event == "update" {
				return true
			}
		}
		return false
	})
	if live := w.livePasses(extEntraID); len(live) != 1 {
		t.Fatalf("%d live passes for the contractor; a pass this replica cannot open must stay live", len(live))
	}
	if cur := w.message(w.approvalMessage(2).Ref()); strings.Contains(cur.PlainText(), "failed") {
		t.Fatalf("the approval message says the request failed: %s", cur.PlainText())
	}
	if labels(w.message(second.Ref())) != "Reveal pass" {
		t.Fatal("the DM no longer offers a pass that is still there")
	}
	w.view(manager, "temporarily unavailable")

	w.env["TAP_ENCRYPTION_KEY"] = newKey + "," + oldKey // the key is back
	w.restart()
	w.click(manager, second, "Reveal pass")
	w.view(manager, w.livePasses(extEntraID)[0].Code)
}
