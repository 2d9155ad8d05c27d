package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// The new hire of the onboarding tests: in Entra ID from HR provisioning, not in Slack yet.
const (
	ninaEntraID    = "00000000-0000-0000-0000-0000000000b1"
	managerEntraID = "00000000-0000-0000-0000-0000000000aa" // manager@example.com, UMANAGER in Slack
)

// withNewHire adds Nina to the tenant, starting in two days (midnight UTC, as most HR systems
// write employeeHireDate), reporting to managerID ("" for nobody).
func withNewHire(managerID string) worldOption {
	return func(w *world) {
		w.graph.AddUser(graphfake.User{ID: ninaEntraID, UPN: "nina@example.com", Mail: "nina@example.com", DisplayName: "Nina New"})
		w.graph.SetHireDate(ninaEntraID, ninaHireDate(w))
		w.graph.SetAccountEnabled(ninaEntraID, false) // enabled by HR on day one
		if managerID != "" {
			w.graph.SetManager(ninaEntraID, managerID)
		}
		w.env["TAP_ONBOARDING"] = "on"
	}
}

func ninaHireDate(w *world) time.Time {
	y, m, d := w.clock().UTC().AddDate(0, 0, 2).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// prompts returns the messages in channel that ask about Nina.
func (w *world) prompts(channel string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range w.slack.Messages(channel) {
		if strings.Contains(m.PlainText(), "Nina New") && strings.Contains(m.PlainText(), "starts on") {
			out = append(out, m)
		}
	}
	return out
}

// TestNewHireManagerIsAskedOnce: a hire two days out is found through Graph's advanced query
// (the fake refuses it without ConsistencyLevel: eventual and $count=true), and their manager is
// asked once, however many replicas look and however often they restart.
func TestNewHireManagerIsAskedOnce(t *testing.T) {
	for name, opts := range map[string][]worldOption{"embedded": nil, "two replicas on redis": {withRedis, withSlackSpeed(20)}} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, append(opts, withNewHire(managerEntraID), withoutStart)...)
			// Both replicas' looks at start overlap: each has the hire list before either asks.
			release := w.graph.Hold(graphfake.OpListHires)
			w.start()
			replicas := 1
			if w.redis != nil {
				w.startReplica()
				replicas = 2
			}
			w.waitFor("every replica's hire-date query", func() bool { return w.graph.Calls(graphfake.OpListHires) >= replicas })
			release()
			prompt := w.dm(manager, "Nina New")
			day := ninaHireDate(w).Format("Monday 2 January 2006")
			if !strings.Contains(prompt.PlainText(), "starts on *"+day+"*") || !strings.Contains(prompt.PlainText(), "reports to you") {
				t.Fatalf("the manager's prompt does not say who starts when:\n%s", prompt.PlainText())
			}
			button(t, prompt, "Request first-morning pass")
			button(t, prompt, "Not needed")

			// Every replica has looked (each looks once at start) before the count.
			looked := func(n int) func() bool {
				return func() bool { return strings.Count(w.logs.String(), "onboarding look-ahead done") >= n }
			}
			w.waitFor("every replica's look-ahead", looked(replicas))
			if n := len(w.prompts(w.slack.DMChannel(manager))); n != 1 {
				t.Fatalf("the manager was asked %d times, want once", n)
			}
			if n := len(w.prompts(approvalChannel)); n != 0 {
				t.Fatalf("the approval channel was asked too (%d), although the manager is in Slack", n)
			}
			if w.redis == nil {
				return // the embedded store forgets on restart, by design
			}
			// tapbot audit shows the prompt in the trail.
			stdout, stderr, status := runTapbot(t, map[string]string{"REDIS_URL": w.env["REDIS_URL"]}, "audit")
			if status != 0 || !strings.Contains(stdout, approvals.EventOnboardingPrompted) || !strings.Contains(stdout, "nina@example.com") {
				t.Fatalf("tapbot audit: exit %d, %s\n%s", status, stderr, stdout)
			}
			w.restart()
			w.waitFor("the restarted replica's look-ahead", looked(replicas+1))
			if n := len(w.prompts(w.slack.DMChannel(manager))); n != 1 {
				t.Fatalf("after a restart the manager was asked %d times, want once", n)
			}
		})
	}
}

// TestFirstMorningPassFromThePrompt: the prompt's button opens the request form filled in for the
// hire (who cannot be picked: not in Slack), starting at 08:00 on the hire date in the manager's
// zone; the pass Entra ID creates starts then, goes to the manager to hand over, and the prompt
// says it was requested.
func TestFirstMorningPassFromThePrompt(t *testing.T) {
	w := newWorld(t, withNewHire(managerEntraID))
	prompt := w.dm(manager, "Nina New")
	before := len(w.slack.Views(manager))
	w.click(manager, prompt, "Request first-morning pass")
	form := w.openedView(manager, before, "tap_request")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	day := ninaHireDate(w)
	start := time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 0, 0, berlin)
	in := viewInputs(t, form)
	if _, picker := in["target"]; picker || !strings.Contains(form.PlainText(), "For:* Nina New (nina@example.com)") {
		t.Fatalf("the form does not name the hire as fixed:\n%s", form.PlainText())
	}
	if got := in["start_date"]["initial_date"]; got != start.Format("2006-01-02") {
		t.Errorf("start date %v, want the hire date %s", got, start.Format("2006-01-02"))
	}
	if got, tz := in["start_time"]["initial_time"], in["start_time"]["timezone"]; got != "08:00" || tz != "Europe/Berlin" {
		t.Errorf("start time %v in %v, want 08:00 in the manager's Europe/Berlin", got, tz)
	}
	if got, _ := in["reason"]["initial_value"].(string); !strings.Contains(got, "Nina New starts on") {
		t.Errorf("reason %q does not name the hire and the day", got)
	}

	ack, err := w.slack.SubmitView(w.ctx(), manager, form.ID, nil)
	if err != nil || ack.ResponseAction != "" {
		t.Fatalf("submit: %v, ack %s %s", err, ack.ResponseAction, ack.Payload)
	}
	m := w.approvalMessage(1)
	w.click(approver, m, "Approve")
	reveal := w.dm(manager, "Reveal pass")
	passes := w.graph.Passes(ninaEntraID)
	if len(passes) != 1 || !passes[0].StartsAt.Equal(start) {
		t.Fatalf("Entra ID holds %+v, want one pass starting %v", passes, start)
	}
	button(t, reveal, "Reveal pass")
	stamp := "<!date^" + strconv.FormatInt(start.Unix(), 10) + "^"
	if text := reveal.PlainText(); !strings.Contains(text, "click *Reveal pass* only when nina@example.com is with you, on the phone or on a video call at "+stamp) ||
		!strings.Contains(text, "Never email, paste or photograph it. It works for one sign-in, valid from "+stamp) {
		t.Errorf("the manager is not told how to hand the pass over:\n%s", text)
	}
	w.waitFor("the prompt updated", func() bool {
		cur := w.message(prompt.Ref())
		return strings.Contains(cur.PlainText(), "asked for a first-morning pass") && len(cur.Buttons()) == 0
	})
}

// TestNewHireWithoutManagerInSlackAsksTheChannel: with no manager in Entra ID the prompt goes to
// the approval channel; "Not needed" asks why and records it in the audit trail, and the
// prompt can no longer be answered.
func TestNewHireWithoutManagerInSlackAsksTheChannel(t *testing.T) {
	t.Run("a manager who is not in Slack", func(t *testing.T) {
		w := newWorld(t, withNewHire(extEntraID)) // ext@example.com has no Slack account
		w.waitFor("the channel prompt", func() bool { return len(w.prompts(approvalChannel)) == 1 })
		if text := w.prompts(approvalChannel)[0].PlainText(); !strings.Contains(text, "their manager ext@example.com is not in Slack") {
			t.Fatalf("the channel prompt does not say why the channel is asked:\n%s", text)
		}
	})
	w := newWorld(t, withNewHire(""))
	var prompt slackfake.Message
	w.waitFor("the channel prompt", func() bool {
		ps := w.prompts(approvalChannel)
		if len(ps) == 1 {
			prompt = ps[0]
		}
		return len(ps) == 1
	})
	if !strings.Contains(prompt.PlainText(), "names no manager") {
		t.Fatalf("the channel prompt does not say why the channel is asked:\n%s", prompt.PlainText())
	}
	before := len(w.slack.Views(approver))
	w.click(approver, prompt, "Not needed")
	why := w.openedView(approver, before, "onboarding_decline")
	ack, err := w.slack.SubmitView(w.ctx(), approver, why.ID, map[string]map[string]slackfake.InputValue{
		"decline_reason": {"decline_reason": slackfake.TextInput("already set up a passkey at the office")},
	})
	if err != nil || ack.ResponseAction != "" {
		t.Fatalf("submit: %v, ack %s %s", err, ack.ResponseAction, ack.Payload)
	}
	w.waitFor("the prompt says not needed", func() bool {
		cur := w.message(prompt.Ref())
		return strings.Contains(cur.PlainText(), "Not needed, said <@"+approver+">: already set up a passkey") && len(cur.Buttons()) == 0
	})
	events := w.auditEvents()
	var declined *approvals.Event
	for i := range events {
		if events[i].Event == approvals.EventOnboardingDeclined {
			declined = &events[i]
		}
	}
	if declined == nil || declined.Actor != approver || declined.Target != "nina@example.com" || !strings.Contains(declined.Reason, "passkey at the office") {
		t.Fatalf("the audit trail holds no onboarding_declined by the approver for Nina: %+v", events)
	}

	// A click on the prompt as it was (another client not yet refreshed) is answered, not acted on.
	if _, err := w.slack.ClickStaleButton(w.ctx(), outsider, prompt.Ref(), "onboarding_request", button(t, prompt, "Request first-morning pass").Value); err != nil {
		t.Fatal(err)
	}
	w.ephemeral(outsider, "already said no pass is needed")
}

// auditEvents reads the store's audit trail of the last hour.
func (w *world) auditEvents() []approvals.Event {
	w.t.Helper()
	evs, err := w.main.store.ReadAudit(w.ctx(), time.Now().Add(-time.Hour))
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

// TestDoctorSeesNewHires: with TAP_ONBOARDING on, doctor runs the hire-date query (through the
// fake that refuses it without the advanced-query parameters) and says how many people start
// within the notice, or that none do and why that may be.
func TestDoctorSeesNewHires(t *testing.T) {
	w := newWorld(t, withoutStart, withNewHire(managerEntraID))
	out, err := w.doctor()
	if err != nil {
		t.Fatalf("doctor = %v\n%s", err, out)
	}
	requireLines(t, out, "✓ New hires: 1 person starts within 3d (the first on "+ninaHireDate(w).Format("2006-01-02")+")")

	w.env["TAP_ONBOARDING_NOTICE"] = "1d" // Nina starts in two days
	out, err = w.doctor()
	if err != nil {
		t.Fatalf("doctor = %v\n%s", err, out)
	}
	requireLines(t, out, "✓ New hires: the hire-date query works; nobody starts within 1d")

	w.graph.SetHireDate(ninaEntraID, time.Time{}) // a tenant whose HR fills no hire dates
	out, _ = w.doctor()
	requireLines(t, out, "✗ New hires: no user in the tenant has a hire date (employeeHireDate)")
}

// TestNewHirePassThatEndsWithoutAPasskey: a first-morning pass that was revealed but ended with
// no passkey, security key, Windows Hello or Authenticator registered is told to the manager
// once, with a button that asks for a new pass working at once.
func TestNewHirePassThatEndsWithoutAPasskey(t *testing.T) {
	w := newWorld(t, withNewHire(managerEntraID), withEnv("TAP_WATCH_INTERVAL", "1s"), withFastSweep)
	prompt := w.dm(manager, "Nina New")
	w.click(manager, prompt, "Request first-morning pass")
	form := w.view(manager, "For:* Nina New")
	if _, err := w.slack.SubmitView(w.ctx(), manager, form.ID, nil); err != nil {
		t.Fatal(err)
	}
	w.click(approver, w.approvalMessage(1), "Approve")
	reveal := w.dm(manager, "How to hand it over")
	w.click(manager, reveal, "Reveal pass")
	w.view(manager, w.codes(ninaEntraID)[0])

	w.advance(4 * 24 * time.Hour) // past the first morning and the pass's hour
	missed := w.dm(manager, "ended")
	if text := missed.PlainText(); !strings.Contains(text, "first-morning pass for Nina New (nina@example.com) ended") ||
		!strings.Contains(text, "no passkey, security key, Windows Hello or Authenticator registered") {
		t.Fatalf("the manager's notice: %s", text)
	}
	// Later watch turns do not tell again.
	turns := strings.Count(w.logs.String(), `"msg":"watched"`)
	w.waitFor("two more watch turns", func() bool { return strings.Count(w.logs.String(), `"msg":"watched"`) >= turns+2 })
	n := 0
	for _, m := range w.slack.Messages(w.slack.DMChannel(manager)) {
		if strings.Contains(m.PlainText(), "ended") && strings.Contains(m.PlainText(), "no passkey") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("told %d times, want once", n)
	}

	before := len(w.slack.Views(manager))
	w.click(manager, missed, "Ask for a new pass")
	again := w.openedView(manager, before, "tap_request")
	in := viewInputs(t, again)
	if d := in["start_date"]["initial_date"]; d != nil {
		t.Errorf("the new pass is set to start %v; it should work at once", d)
	}
	if got, _ := in["reason"]["initial_value"].(string); !strings.Contains(got, "ended without a passkey") {
		t.Errorf("reason %q", got)
	}
}

// startingSoon returns the Starting soon line of user's Home tab about upn, "" when none.
func (w *world) startingSoon(user, upn string) string {
	w.t.Helper()
	text := w.openHome(user).PlainText()
	_, section, ok := strings.Cut(text, "*Starting soon*")
	if !ok {
		return ""
	}
	for _, line := range strings.Split(section, "\n") {
		if strings.Contains(line, upn) {
			return line
		}
	}
	return ""
}

// TestStartingSoonShowsWhereEachHireStands: the approver's Home tab lists every hire of the week
// ago to the notice ahead with how far they got, from not asked to passkey registered; the
// manager sees only the hire they were asked about.
func TestStartingSoonShowsWhereEachHireStands(t *testing.T) {
	w := newWorld(t, withNewHire(managerEntraID), withEnv("TAP_WATCH_INTERVAL", "1s"), withFastSweep, withoutStart)
	// Omar started three days ago, before anyone looked: never asked. Pia has no manager and
	// needs no pass.
	omar := w.graph.AddUser(graphfake.User{UPN: "omar@example.com", Mail: "omar@example.com", DisplayName: "Omar Old"})
	w.graph.SetHireDate(omar.ID, ninaHireDate(w).AddDate(0, 0, -5))
	pia := w.graph.AddUser(graphfake.User{UPN: "pia@example.com", Mail: "pia@example.com", DisplayName: "Pia Pass"})
	w.graph.SetHireDate(pia.ID, ninaHireDate(w).AddDate(0, 0, -1))
	w.start()

	prompt := w.dm(manager, "Nina New")
	stage := func(user, upn, want string) {
		t.Helper()
		w.waitFor(user+" sees "+upn+" "+want, func() bool { return strings.Contains(w.startingSoon(user, upn), "*"+want+"*") })
	}
	stage(approver, "nina@example.com", "asked")
	stage(approver, "omar@example.com", "not asked")
	if line := w.startingSoon(approver, "nina@example.com"); !strings.Contains(line, "manager <@"+manager+">") ||
		!strings.Contains(line, "starts "+ninaHireDate(w).Format("2006-01-02")) {
		t.Errorf("Nina's line: %q", line)
	}

	var channelPrompt slackfake.Message
	w.waitFor("Pia's channel prompt", func() bool {
		for _, m := range w.slack.Messages(approvalChannel) {
			if strings.Contains(m.PlainText(), "Pia Pass") {
				channelPrompt = m
				return true
			}
		}
		return false
	})
	w.click(approver, channelPrompt, "Not needed")
	why := w.view(approver, "No first-morning pass for")
	if _, err := w.slack.SubmitView(w.ctx(), approver, why.ID, map[string]map[string]slackfake.InputValue{
		"decline_reason": {"decline_reason": slackfake.TextInput("contractor, uses their own company's account")},
	}); err != nil {
		t.Fatal(err)
	}
	stage(approver, "pia@example.com", "not needed")

	w.click(manager, prompt, "Request first-morning pass")
	form := w.view(manager, "For:* Nina New")
	if _, err := w.slack.SubmitView(w.ctx(), manager, form.ID, nil); err != nil {
		t.Fatal(err)
	}
	stage(manager, "nina@example.com", "requested")
	creating := w.graph.Hold(graphfake.OpCreatePass)
	w.click(approver, w.approvalMessage(2), "Approve") // after Pia's prompt
	stage(approver, "nina@example.com", "approved")
	creating()
	stage(approver, "nina@example.com", "issued")
	reveal := w.dm(manager, "How to hand it over")
	w.click(manager, reveal, "Reveal pass")
	w.view(manager, w.codes(ninaEntraID)[0])
	stage(manager, "nina@example.com", "revealed")

	start := w.graph.Passes(ninaEntraID)[0].StartsAt
	w.graph.AddMethod(ninaEntraID, graphfake.Method{Type: graphfake.MethodFIDO2, DisplayName: "Passkey", CreatedAt: start.Add(10 * time.Minute)})
	stage(manager, "nina@example.com", "passkey registered")

	// A pass that did its job gets no "ended without a passkey" notice when it ends.
	w.advance(4 * 24 * time.Hour)
	turns := strings.Count(w.logs.String(), `"msg":"watched"`)
	w.waitFor("two more watch turns", func() bool { return strings.Count(w.logs.String(), `"msg":"watched"`) >= turns+2 })
	for _, m := range w.slack.Messages(w.slack.DMChannel(manager)) {
		if strings.Contains(m.PlainText(), "no passkey") {
			t.Fatalf("a pass with a passkey registered was reported as ending without one: %s", m.PlainText())
		}
	}

	// The manager was asked about Nina only.
	if line := w.startingSoon(manager, "pia@example.com"); line != "" {
		t.Errorf("the manager sees a hire they were not asked about: %q", line)
	}
	if line := w.startingSoon(outsider, "nina@example.com"); line != "" {
		t.Errorf("someone who is neither approver nor manager sees the cohort: %q", line)
	}
}
