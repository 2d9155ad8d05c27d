package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

const (
	security  = "USECURITY" // a protected approver
	mgr       = "UMGR"      // Ada's manager
	auditChan = "CAUDIT"
	protected = "11111111-2222-3333-4444-555555555555"
)

// withTrustPeople adds Ada's manager and a security approver to both fakes and an audit channel.
func withTrustPeople(w *world) {
	w.slack.AddUser(slackfake.User{ID: mgr, Name: "mgr", Email: "mgr@example.com"})
	w.slack.AddUser(slackfake.User{ID: security, Name: "security", Email: "security@example.com"})
	w.slack.AddChannel(auditChan, security, approver)
	w.slack.AddChannel(approvalChannel, manager, approver, groupie, outsider, ada, security)
	w.graph.AddUser(graphfake.User{ID: "00000000-0000-0000-0000-0000000000cc", UPN: "mgr@example.com", Mail: "mgr@example.com", DisplayName: "Manager of Ada"})
	w.graph.AddUser(graphfake.User{UPN: "security@example.com", Mail: "security@example.com", DisplayName: "Security"})
	w.env["TAP_AUDIT_CHANNEL"] = auditChan
}

func TestWhoMayRequest(t *testing.T) {
	w := newWorld(t, withEnv("TAP_REQUESTERS", "SREQUESTERS"), withEnv("TAP_GROUP_CACHE_TTL", "1m"))
	w.slack.AddGroup("SREQUESTERS", manager)
	w.tap(outsider, "<@UADA> 1h once lost phone")
	refusal := w.ephemeral(outsider, "not allowed to request")
	if !strings.Contains(refusal.PlainText(), "<!subteam^SREQUESTERS>") {
		t.Fatalf("the refusal does not say who can: %s", refusal.PlainText())
	}
	w.tap(manager, "<@UADA> 1h once lost phone")
	m := w.approvalMessage(1)
	w.click(approver, m, "Deny")
	w.dm(manager, "denied")

	// Removed from the group: the right goes once the cached membership is older than the TTL.
	w.slack.AddGroup("SREQUESTERS", approver)
	w.advance(2 * time.Minute)
	w.tap(manager, "<@UADA> 1h once again")
	w.ephemeral(manager, "not allowed to request")
}

func TestSelfRequest(t *testing.T) {
	t.Run("refused by default", func(t *testing.T) {
		w := newWorld(t)
		w.tap(manager, "<@UMANAGER> 1h once I lost my phone")
		w.ephemeral(manager, "for yourself")
		w.tap(manager, "manager@example.com 1h once I lost my phone")
		w.ephemeral(manager, "for yourself")
		if n := len(w.slack.Messages(approvalChannel)); n != 0 {
			t.Fatal("a self request reached the approvers")
		}
	})
	t.Run("allowed but needs another approver", func(t *testing.T) {
		w := newWorld(t, withEnv("TAP_ALLOW_SELF_REQUEST", "true"), withEnv("TAP_APPROVERS", approver+","+ada))
		w.tap(ada, "<@UADA> 1h once I lost my phone")
		m := w.approvalMessage(1)
		w.click(ada, m, "Approve")
		w.ephemeral(ada, "someone else has to approve")
		w.click(approver, m, "Approve")
		w.click(ada, w.dm(ada, "Reveal"), "Reveal pass")
		w.view(ada, w.livePasses(adaEntraID)[0].Code)
	})
}

func TestManagerIsAskedFirst(t *testing.T) {
	w := newWorld(t, withTrustPeople, withEnv("TAP_ROUTE_TO_MANAGER", "true"), withoutStart)
	w.graph.SetManager(adaEntraID, "00000000-0000-0000-0000-0000000000cc")
	w.start()
	w.tap(manager, "<@UADA> 1h once new laptop")
	ask := w.dm(mgr, "You are asked as the manager of ada@example.com")
	if n := len(w.slack.Messages(approvalChannel)); n != 0 {
		t.Fatal("the channel was asked although the manager is in Slack")
	}
	w.click(mgr, ask, "Approve") // the manager is not in TAP_APPROVERS, yet may decide this one
	w.dm(ada, "Reveal")

	// When the manager is the requester, the channel is asked instead.
	w.graph.SetManager(adaEntraID, "00000000-0000-0000-0000-0000000000aa") // manager@example.com
	w.tap(manager, "<@UADA> 1h once second")
	w.approvalMessage(1)
}

func TestPrivilegedTargets(t *testing.T) {
	t.Run("refused without protected approvers", func(t *testing.T) {
		w := newWorld(t, withEnv("TAP_PROTECTED_GROUPS", protected))
		w.graph.AssignRole(adaEntraID, "Global Administrator")
		w.tap(manager, "<@UADA> 1h once new laptop")
		w.ephemeral(manager, "privileged account (directory roles: Global Administrator)")
		w.graph.AddGroup(protected, extEntraID)
		w.tap(manager, "ext@example.com 1h once contractor")
		w.ephemeral(manager, "member of protected groups: "+protected)
		if n := len(w.slack.Messages(approvalChannel)); n != 0 {
			t.Fatal("a privileged target reached the approvers")
		}
	})
	t.Run("only protected approvers decide", func(t *testing.T) {
		w := newWorld(t, withTrustPeople, withEnv("TAP_PROTECTED_APPROVERS", security))
		w.graph.AssignRole(adaEntraID, "Privileged Authentication Administrator")
		w.tap(manager, "<@UADA> 1h once new laptop")
		m := w.approvalMessage(1)
		if !strings.Contains(m.PlainText(), "Privileged account") {
			t.Fatalf("approval message does not flag the privileged target:\n%s", m.PlainText())
		}
		w.click(approver, m, "Approve")
		refusal := w.ephemeral(approver, "only the protected approvers")
		if !strings.Contains(refusal.PlainText(), "<@USECURITY>") {
			t.Fatalf("refusal does not name the protected approvers: %s", refusal.PlainText())
		}
		w.click(security, m, "Approve")
		w.dm(ada, "Reveal")
	})
	t.Run("graph refuses the privilege check", func(t *testing.T) {
		w := newWorld(t)
		w.graph.FailNext(graphfake.OpListRoles, 403, 1, "")
		w.tap(manager, "<@UADA> 1h once new laptop")
		w.ephemeral(manager, "RoleManagement.Read.Directory")
	})
}

func TestRateAndOnePendingPerTarget(t *testing.T) {
	w := newWorld(t, withEnv("TAP_RATE_PER_REQUESTER", "2"))
	w.tap(manager, "<@UADA> 1h once first")
	w.approvalMessage(1)
	w.tap(manager, "<@UADA> 1h once second")
	w.ephemeral(manager, "already a request for ada@example.com waiting")
	w.tap(manager, "ext@example.com 1h once third")
	w.ephemeral(manager, "the limit is 2. Try again after")
	if n := len(w.slack.Messages(approvalChannel)); n != 1 {
		t.Fatalf("%d approval messages, want 1", n)
	}
}

func TestReportRevokeAndAlarms(t *testing.T) {
	w := newWorld(t, withRedis, withTrustPeople, withEnv("TAP_PROTECTED_APPROVERS", security))
	w.tap(manager, "<@UADA> 1h once new laptop")
	m := w.approvalMessage(1)
	w.click(approver, m, "Approve")
	dm := w.dm(ada, "asked for a Temporary Access Pass for you")
	for _, want := range []string{"<@UMANAGER> asked", "<@UAPPROVER> approved"} {
		if !strings.Contains(dm.PlainText(), want) {
			t.Fatalf("the DM does not say %q: %s", want, dm.PlainText())
		}
	}
	w.click(ada, dm, "Reveal pass")
	code := w.livePasses(adaEntraID)[0].Code
	w.view(ada, code)
	w.waitFor("the reveal recorded", func() bool { return strings.Contains(w.message(dm.Ref()).PlainText(), "Revealed") })

	// Someone clicks the old Reveal button again: the pass may be in someone else's hands.
	b := button(t, dm, "Reveal pass")
	if _, err := w.slack.ClickStaleButton(w.ctx(), ada, dm.Ref(), b.ActionID, b.Value); err != nil {
		t.Fatal(err)
	}
	alert := w.waitMessage(auditChan, "tried to reveal a pass that was already revealed")
	if !strings.Contains(alert.PlainText(), "ada@example.com") || !strings.Contains(alert.PlainText(), "tap_") {
		t.Fatalf("the alert does not name the target and request: %s", alert.PlainText())
	}

	w.click(ada, w.message(dm.Ref()), "This wasn't me")
	w.ephemeral(ada, "IT has been alerted")
	report := w.waitMessage(auditChan, "says *this wasn't me*")
	w.click(security, report, "Revoke")
	w.ephemeral(security, "was deleted in Entra ID")
	if live := w.livePasses(adaEntraID); len(live) != 0 {
		t.Fatalf("the pass is still live after Revoke: %+v", live)
	}
	w.waitFor("the DM says revoked", func() bool {
		return strings.Contains(w.message(dm.Ref()).PlainText(), "revoked by <@USECURITY>")
	})
	w.waitFor("the approval message says revoked", func() bool {
		return strings.Contains(w.message(m.Ref()).PlainText(), "revoked by <@USECURITY>")
	})
	w.dm(manager, "was revoked by <@USECURITY>")

	// The audit trail, as `tapbot audit --json` prints it.
	out := w.runCommand("audit", "--json", "--since", "1h")
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit --json line %q: %v", line, err)
		}
		for _, field := range []string{"time", "event", "request_id", "actor", "target"} {
			if _, ok := e[field]; !ok {
				t.Fatalf("audit event lacks %q: %s", field, line)
			}
		}
		if e["target"] != "ada@example.com" {
			t.Fatalf("audit target = %v, want the Entra UPN", e["target"])
		}
		events = append(events, e["event"].(string))
	}
	if got := strings.Join(events, ","); got != "requested,approved,issued,revealed,reveal_refused,reported,revoked" {
		t.Fatalf("audit trail = %s", got)
	}
	if strings.Contains(out, code) {
		t.Fatal("the audit trail holds the pass")
	}
	table := w.runCommand("audit", "--user", "UAPPROVER")
	if !strings.Contains(table, "approved") || strings.Contains(table, "revealed") {
		t.Fatalf("audit --user UAPPROVER =\n%s", table)
	}
	// Every event also went to the audit channel, escaped, without the pass.
	w.waitMessage(auditChan, "`issued`")
}

func TestAuditWithEmbeddedStoreSaysWhereTheTrailIs(t *testing.T) {
	w := newWorld(t)
	out, err := w.command("audit")
	if err == nil || !strings.Contains(out, "lives only in the running bot's log") {
		t.Fatalf("tapbot audit with the embedded store = %v\n%s", err, out)
	}
}

// waitMessage waits for a message in channel whose text contains text.
func (w *world) waitMessage(channel, text string) slackfake.Message {
	w.t.Helper()
	var found slackfake.Message
	w.waitFor("a message in "+channel+" with "+text, func() bool {
		for _, m := range w.slack.Messages(channel) {
			if strings.Contains(m.PlainText(), text) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// command runs this binary as `tapbot <args>` with the world's configuration.
func (w *world) command(args ...string) (string, error) {
	w.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = w.t.TempDir()
	cmd.Env = []string{"TAPBOT_TEST_RUN_MAIN=1", "TAPBOT_TEST_ARGS=" + strings.Join(args, " "),
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range w.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (w *world) runCommand(args ...string) string {
	w.t.Helper()
	out, err := w.command(args...)
	if err != nil {
		w.t.Fatalf("tapbot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestRequesterRevokesBeforeReveal(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once wrong person")
	m := w.approvalMessage(1)
	w.click(approver, m, "Approve")
	dm := w.dm(ada, "Reveal")
	w.waitFor("Revoke offered", func() bool { return labels(w.message(m.Ref())) == "Revoke" })
	w.click(outsider, w.message(m.Ref()), "Revoke")
	w.ephemeral(outsider, "Only the requester and the approvers can revoke")
	w.click(manager, w.message(m.Ref()), "Revoke")
	w.ephemeral(manager, "was deleted in Entra ID")
	if live := w.livePasses(adaEntraID); len(live) != 0 {
		t.Fatal("the pass is still live after Revoke")
	}
	w.waitFor("the DM says revoked and offers nothing", func() bool {
		cur := w.message(dm.Ref())
		return strings.Contains(cur.PlainText(), "revoked by <@UMANAGER>") && labels(cur) == ""
	})
	b := button(t, dm, "Reveal pass")
	if _, err := w.slack.ClickStaleButton(w.ctx(), ada, dm.Ref(), b.ActionID, b.Value); err != nil {
		t.Fatal(err)
	}
	w.view(ada, "already revoked")
}
