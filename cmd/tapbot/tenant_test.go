package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// The tenant's other people, as the audit log names them.
var (
	portalAdmin = graphfake.AuditInitiator{UserID: "00000000-0000-0000-0000-0000000000ff", UPN: "root@example.com", UserName: "Root Admin"}
	mspTool     = graphfake.AuditInitiator{AppID: "99999999-0000-0000-0000-000000000001", AppName: "MSP Onboarding"}
)

// withTenantWatch reads the audit log every second (and runs the follow-up jobs often enough
// to take each turn), on a real redis-server.
func withTenantWatch(w *world) {
	withRedis(w)
	withFastSweep(w)
	w.env["TAP_TENANT_WATCH_INTERVAL"] = "1s"
}

// alerts are the tenant alerts posted in the approval channel (no audit channel is set).
func (w *world) alerts() []slackfake.Message {
	var out []slackfake.Message
	for _, m := range w.slack.Messages(approvalChannel) {
		if strings.Contains(m.PlainText(), "made outside tapbot") {
			out = append(out, m)
		}
	}
	return out
}

// alertsFor are the alerts about upn.
func (w *world) alertsFor(upn string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range w.alerts() {
		if strings.Contains(m.PlainText(), upn) {
			out = append(out, m)
		}
	}
	return out
}

// alertFor waits for the alert about upn and returns it as it is now.
func (w *world) alertFor(upn string) slackfake.Message {
	w.t.Helper()
	w.waitFor("the alert for "+upn, func() bool { return len(w.alertsFor(upn)) > 0 })
	return w.alertsFor(upn)[0]
}

// sentinel makes a pass outside tapbot for the manager and waits for its alert: by then the
// watcher has read the log again, and everything made before was read with it (the overlap).
func (w *world) sentinel() {
	w.t.Helper()
	w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: managerEntraID, By: portalAdmin})
	w.alertFor("manager@example.com")
}

// sentinel2 is sentinel for another person, for a second read after the first.
func (w *world) sentinel2() {
	w.t.Helper()
	w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: adaEntraID, By: portalAdmin})
	w.alertFor("ada@example.com")
}

func TestPortalPassRaisesOneAlertAndRevokeDeletesExactlyIt(t *testing.T) {
	w := newWorld(t, withTenantWatch)
	w.startReplica()
	// A pass through tapbot first: it must raise nothing.
	w.tap(manager, "<@UADA> 1h once new laptop")
	w.click(approver, w.approvalMessage(1), "Approve")
	w.dm(ada, "Reveal")
	portal, _ := w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: extEntraID, By: portalAdmin, LifetimeMinutes: 120})
	alert := w.alertFor("ext@example.com")
	text := alert.PlainText()
	for _, want := range []string{"Root Admin (root@example.com)", "multi-use", "*Privileged:* no"} {
		if !strings.Contains(text, want) {
			t.Errorf("the alert does not say %q:\n%s", want, text)
		}
	}
	if got := labels(alert); got != "Revoke,Expected" {
		t.Fatalf("the alert's buttons are %q, want Revoke,Expected", got)
	}
	w.sentinel()
	if n := len(w.alertsFor("ext@example.com")); n != 1 {
		t.Fatalf("%d alerts for the portal pass across two replicas, want 1", n)
	}
	if n := len(w.alertsFor("ada@example.com")); n != 0 {
		t.Fatalf("tapbot's own pass raised %d alerts", n)
	}

	w.click(outsider, alert, "Revoke")
	w.ephemeral(outsider, "Only the approvers")
	w.click(approver, alert, "Revoke")
	w.waitFor("the alert to say it was revoked", func() bool {
		return strings.Contains(w.message(alert.Ref()).PlainText(), "Revoked by")
	})
	for _, p := range w.graph.Passes(extEntraID) {
		if p.ID == portal.ID && !p.Deleted {
			t.Fatal("Revoke did not delete the portal pass")
		}
	}
	for _, p := range w.graph.Passes(adaEntraID) {
		if p.Deleted {
			t.Fatal("Revoke deleted tapbot's pass for someone else")
		}
	}
	if got := labels(w.message(alert.Ref())); got != "" {
		t.Fatalf("a revoked alert still shows %q", got)
	}

	// Expected, on the sentinel's alert: a reason in a modal, then the alert says who.
	sentinel := w.alertFor("manager@example.com")
	w.click(approver, sentinel, "Expected")
	form := w.view(approver, "Why was this pass expected?")
	if ack, err := w.slack.SubmitView(w.ctx(), approver, form.ID, map[string]map[string]slackfake.InputValue{
		"ext_reason": {"reason": slackfake.TextInput("service desk <!channel> onboarding")},
	}); err != nil || strings.Contains(string(ack.Payload), "errors") {
		t.Fatalf("submit the reason: %v %s", err, ack.Payload)
	}
	w.waitFor("the alert to say it was expected", func() bool {
		return strings.Contains(w.message(sentinel.Ref()).PlainText(), "Expected, said")
	})

	trail := w.runCommand("audit", "--json", "--since", "1h")
	for _, event := range []string{"confirmed_in_entra", "external_pass_created", "external_pass_revoked", "external_pass_acknowledged"} {
		if !strings.Contains(trail, `"event":"`+event+`"`) {
			t.Errorf("tapbot audit shows no %s:\n%s", event, trail)
		}
	}
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, w.graph.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env["TAPBOT_TEST_CA"] = caPath
	passes := w.runCommand("passes", "--json")
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(passes), "\n") {
		var p struct{ User, State, RequestID string }
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("tapbot passes --json: %v\n%s", err, passes)
		}
		states[p.User] = p.State
	}
	if states["ext@example.com"] != "revoked" || states["manager@example.com"] != "acknowledged" || states["ada@example.com"] != "active" {
		t.Fatalf("tapbot passes: %v\n%s", states, passes)
	}
}

func TestLateAuditRecordIsStillCaughtThroughThrottling(t *testing.T) {
	w := newWorld(t, withTenantWatch)
	w.sentinel() // the watcher has a cursor
	// Made five minutes before the watcher's last read, its record arrives only now.
	_, rec := w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: extEntraID, By: mspTool, At: w.clock().Add(-5 * time.Minute), Late: true})
	w.sentinel2()
	// Graph throttles the next reads; the watcher waits them out (Retry-After).
	w.graph.FailNext(graphfake.OpListAudits, 429, 2, "1")
	w.graph.DeliverAudit(rec.ID)
	alert := w.alertFor("ext@example.com")
	if !strings.Contains(alert.PlainText(), "*Made by:* app MSP Onboarding") {
		t.Fatalf("the alert does not name the app:\n%s", alert.PlainText())
	}
}

func TestRestartNeitherRepeatsNorMissesAnAlert(t *testing.T) {
	w := newWorld(t, withTenantWatch)
	w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: extEntraID, By: portalAdmin})
	w.alertFor("ext@example.com")
	w.stop()
	// Made while tapbot is down.
	w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: adaEntraID, By: portalAdmin})
	w.start()
	w.alertFor("ada@example.com")
	w.sentinel()
	if n := len(w.alertsFor("ext@example.com")); n != 1 {
		t.Fatalf("%d alerts for the pass made before the restart, want 1", n)
	}
	if n := len(w.alertsFor("ada@example.com")); n != 1 {
		t.Fatalf("%d alerts for the pass made during the restart, want 1", n)
	}
}

func TestPassDeletedOutsideTapbotIsShownOnTheRequest(t *testing.T) {
	w := newWorld(t, withTenantWatch)
	w.tap(manager, "<@UADA> 1h once new laptop")
	approval := w.approvalMessage(1)
	w.click(approver, approval, "Approve")
	dm := w.dm(ada, "Reveal")
	if _, ok := w.graph.DeletePassOutside(adaEntraID, portalAdmin); !ok {
		t.Fatal("no live pass to delete")
	}
	w.waitFor("the DM to say the pass was removed", func() bool {
		return strings.Contains(w.message(dm.Ref()).PlainText(), "removed in Entra ID by Root Admin")
	})
	if got := labels(w.message(dm.Ref())); strings.Contains(got, "Reveal") {
		t.Fatalf("the DM still offers %q for a deleted pass", got)
	}
	if !strings.Contains(w.message(approval.Ref()).PlainText(), "removed in Entra ID by Root Admin") {
		t.Fatalf("the approval message does not say the pass was removed:\n%s", w.message(approval.Ref()).PlainText())
	}
	w.dm(manager, "removed in Entra ID by Root Admin")
}

func TestPrivilegedPersonsAlertIsUrgent(t *testing.T) {
	w := newWorld(t, withTenantWatch, withEnv("TAP_PROTECTED_APPROVERS", groupie))
	w.graph.AssignRole(extEntraID, "Global Administrator")
	w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: extEntraID, By: mspTool, UsableOnce: true})
	text := w.alertFor("ext@example.com").PlainText()
	for _, want := range []string{"URGENT", "*yes* (roles: Global Administrator)", "<@" + groupie + ">", "one-time", "*Made by:* app MSP Onboarding"} {
		if !strings.Contains(text, want) {
			t.Errorf("the alert does not say %q:\n%s", want, text)
		}
	}
	// A person who is not privileged gets no urgency and no mention.
	w.sentinel()
	if text := w.alertFor("manager@example.com").PlainText(); strings.Contains(text, "URGENT") || strings.Contains(text, "<@"+groupie+">") {
		t.Fatalf("an ordinary person's alert is urgent:\n%s", text)
	}
}

func TestWatcherWithoutPermissionSaysSoOnceAndTheRestWorks(t *testing.T) {
	w := newWorld(t, withTenantWatch, withoutStart)
	w.graph.SetRoles(slices.DeleteFunc(slices.Clone(graphfake.DefaultRoles), func(r string) bool { return r == "AuditLog.Read.All" })...)
	w.start()
	w.startReplica()
	offNotices := func() int {
		n := 0
		for _, m := range w.slack.Messages(approvalChannel) {
			if strings.Contains(m.PlainText(), "tenant watcher is off") {
				n++
			}
		}
		return n
	}
	w.waitFor("the notice that the watcher is off", func() bool { return offNotices() > 0 })
	// Both replicas were refused (each logs it once) before the notices are counted.
	w.waitFor("both replicas to find the audit log closed", func() bool {
		return strings.Count(w.logs.String(), "tenant watch is off") >= 2
	})
	w.tap(manager, "<@UADA> 1h once new laptop")
	approval := w.slack.Messages(approvalChannel)
	w.waitFor("the approval message", func() bool { return len(w.slack.Messages(approvalChannel)) > len(approval) })
	for _, m := range w.slack.Messages(approvalChannel) {
		if strings.Contains(labels(m), "Approve") {
			w.click(approver, m, "Approve")
		}
	}
	w.dm(ada, "Reveal")
	if n := offNotices(); n != 1 {
		t.Fatalf("%d notices that the watcher is off, want 1", n)
	}
	if text := w.slack.Messages(approvalChannel)[0].PlainText(); !strings.Contains(text, "AuditLog.Read.All") {
		t.Fatalf("the notice does not say what to grant:\n%s", text)
	}
}

func TestWatcherSaysWhichWindowItCouldNotCheck(t *testing.T) {
	w := newWorld(t, withTenantWatch)
	w.sentinel()
	w.advance(9 * 24 * time.Hour) // down longer than the audit log keeps records
	gaps := func() int {
		n := 0
		for _, m := range w.slack.Messages(approvalChannel) {
			if strings.Contains(m.PlainText(), "could not check") {
				n++
			}
		}
		return n
	}
	w.waitFor("the notice of the unchecked window", func() bool { return gaps() > 0 })
	calls := w.graph.Calls(graphfake.OpListAudits)
	w.waitFor("two more reads", func() bool { return w.graph.Calls(graphfake.OpListAudits) >= calls+2 })
	if n := gaps(); n != 1 {
		t.Fatalf("%d notices of the unchecked window, want 1", n)
	}
}

// TestPassByTapbotsOwnAppRaisesNone: a pass tapbot's own app made that no request recorded (an
// approval interrupted after the create) is tapbot's, not an alert.
func TestPassByTapbotsOwnAppRaisesNone(t *testing.T) {
	w := newWorld(t, withTenantWatch)
	w.graph.CreatePassOutside(graphfake.OutsidePass{UserID: extEntraID, By: graphfake.AuditInitiator{AppID: w.graph.ClientID(), AppName: "tapbot"}})
	w.sentinel()
	if n := len(w.alertsFor("ext@example.com")); n != 0 {
		t.Fatalf("tapbot's own app's pass raised %d alerts", n)
	}
}
