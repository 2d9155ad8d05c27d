package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// form is what a person fills into the /tap form; empty fields are left untouched, so they
// submit what the form showed.
type form struct {
	target, lifetime, usage, reason string
	date, clock                     string // start date "2006-01-02" and time "15:04"
	clearClock                      bool   // the person emptied the start time
}

func (f form) values() map[string]map[string]slackfake.InputValue {
	v := map[string]map[string]slackfake.InputValue{
		"target": {"target": slackfake.SelectUser(f.target)},
		"reason": {"reason": slackfake.TextInput(f.reason)},
	}
	if f.lifetime != "" {
		v["lifetime"] = map[string]slackfake.InputValue{"lifetime": slackfake.SelectOption(f.lifetime)}
	}
	if f.usage != "" {
		v["usage"] = map[string]slackfake.InputValue{"usage": slackfake.SelectOption(f.usage)}
	}
	if f.date != "" {
		v["start_date"] = map[string]slackfake.InputValue{"start_date": slackfake.PickDate(f.date)}
	}
	if f.clock != "" || f.clearClock {
		v["start_time"] = map[string]slackfake.InputValue{"start_time": slackfake.PickTime(f.clock)}
	}
	return v
}

// openForm runs /tap alone as user and returns the form they now see.
func (w *world) openForm(user string) slackfake.View {
	w.t.Helper()
	before := len(w.slack.Views(user))
	w.tap(user, "")
	return w.openedView(user, before, "tap_request")
}

// openedView waits for a view with callbackID opened for user after the first before views, and
// returns it.
func (w *world) openedView(user string, before int, callbackID string) slackfake.View {
	w.t.Helper()
	var found slackfake.View
	w.waitFor("a "+callbackID+" window for "+user, func() bool {
		views := w.slack.Views(user)
		for _, v := range views[min(before, len(views)):] {
			if v.Event == "open" && v.CallbackID == callbackID {
				found = v
				return true
			}
		}
		return false
	})
	return found
}

func (w *world) submitForm(user string, v slackfake.View, f form) slackfake.Ack {
	w.t.Helper()
	ack, err := w.slack.SubmitView(w.ctx(), user, v.ID, f.values())
	if err != nil {
		w.t.Fatalf("%s submits the form: %v", user, err)
	}
	return ack
}

// viewInputs decodes a view's input blocks: block ID -> its element.
func viewInputs(t *testing.T, v slackfake.View) map[string]map[string]any {
	t.Helper()
	var obj struct {
		Blocks []struct {
			Type    string         `json:"type"`
			BlockID string         `json:"block_id"`
			Element map[string]any `json:"element"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(v.JSON, &obj); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, b := range obj.Blocks {
		if b.Type == "input" {
			out[b.BlockID] = b.Element
		}
	}
	return out
}

func optionValues(el map[string]any) string {
	var out []string
	opts, _ := el["options"].([]any)
	for _, o := range opts {
		out = append(out, fmt.Sprint(o.(map[string]any)["value"]))
	}
	return strings.Join(out, ",")
}

// TestRequestFormFollowsTheTenantPolicy: the form offers only lifetimes within the tenant
// policy and TAP_MAX_LIFETIME, and only one-time passes when the tenant requires them.
func TestRequestFormFollowsTheTenantPolicy(t *testing.T) {
	tests := []struct {
		name      string
		policy    graphfake.Policy
		env       map[string]string
		lifetimes string
		usages    string
	}{
		{"Entra's defaults", graphfake.DefaultPolicy, nil, "1h,2h,4h,8h", "once,multi"},
		{"tenant allows 30m to 4h, one-time only",
			graphfake.Policy{Enabled: true, MinLifetimeMinutes: 30, MaxLifetimeMinutes: 240, DefaultLifetimeMinutes: 60, IsUsableOnce: true},
			nil, "30m,1h,2h,4h", "once"},
		{"TAP_MAX_LIFETIME below the tenant's maximum", graphfake.DefaultPolicy, map[string]string{"TAP_MAX_LIFETIME": "2h"}, "1h,2h", "once,multi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []worldOption
			for k, v := range tt.env {
				opts = append(opts, withEnv(k, v))
			}
			w := newWorld(t, opts...)
			w.graph.SetPolicy(tt.policy)
			in := viewInputs(t, w.openForm(manager))
			if got := optionValues(in["lifetime"]); got != tt.lifetimes {
				t.Errorf("lifetimes offered %s, want %s", got, tt.lifetimes)
			}
			if got := optionValues(in["usage"]); got != tt.usages {
				t.Errorf("usages offered %s, want %s", got, tt.usages)
			}
			if tz, _ := in["start_time"]["timezone"].(string); tz != "Europe/Berlin" {
				t.Errorf("the start time is not read in the requester's zone: %q", tz)
			}
		})
	}
	t.Run("tenant turned passes off", func(t *testing.T) {
		w := newWorld(t)
		p := graphfake.DefaultPolicy
		p.Enabled = false
		w.graph.SetPolicy(p)
		w.tap(manager, "")
		w.ephemeral(manager, "Temporary Access Pass is turned off")
		if n := len(w.slack.Views(manager)); n != 0 {
			t.Fatalf("a form was opened for a tenant without passes (%d views)", n)
		}
	})
}

// TestRequestFormShowsRefusalsBesideTheirField: everything Slack, Entra ID or the rules refuse
// is shown in the form, beside the field it is about, and nothing reaches the approvers.
func TestRequestFormShowsRefusalsBesideTheirField(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	today := time.Now().In(berlin)
	tests := []struct {
		name   string
		env    map[string]string
		before func(w *world)
		f      form
		block  string
		want   string
	}{
		{name: "a person without an Entra account", f: form{target: outsider, reason: "new laptop"},
			block: "target", want: "No Entra ID account found for outsider@example.com."},
		{name: "a pass for oneself", f: form{target: manager, reason: "lost phone"},
			block: "target", want: "You cannot ask for a pass for yourself"},
		{name: "a start that has passed", f: form{target: ada, reason: "first day", date: today.AddDate(0, 0, -1).Format("2006-01-02"), clock: "09:00"},
			block: "start_date", want: "has already passed"},
		{name: "a start too far ahead", f: form{target: ada, reason: "first day", date: today.AddDate(0, 0, 20).Format("2006-01-02"), clock: "09:00"},
			block: "start_date", want: "at most 14d ahead"},
		{name: "a start date without a time", f: form{target: ada, reason: "first day", date: today.AddDate(0, 0, 2).Format("2006-01-02"), clearClock: true},
			block: "start_time", want: "Pick the time the pass should start"},
		{name: "an empty reason", f: form{target: ada, reason: "   "}, block: "reason", want: "A reason is required"},
		{name: "the hourly limit", env: map[string]string{"TAP_RATE_PER_REQUESTER": "1"},
			before: func(w *world) { w.tap(manager, "ext@example.com 1h once contractor"); w.approvalMessage(1) },
			f:      form{target: ada, reason: "new laptop"}, block: "target", want: "the limit is 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []worldOption
			for k, v := range tt.env {
				opts = append(opts, withEnv(k, v))
			}
			w := newWorld(t, opts...)
			if tt.before != nil {
				tt.before(w)
			}
			approvals := len(w.slack.Messages(approvalChannel))
			v := w.openForm(manager)
			ack := w.submitForm(manager, v, tt.f)
			var got struct {
				Errors map[string]string `json:"errors"`
			}
			_ = json.Unmarshal(ack.Payload, &got)
			if ack.ResponseAction != "errors" || len(got.Errors) != 1 || !strings.Contains(got.Errors[tt.block], tt.want) {
				t.Fatalf("ack %s %s, want an error at %s containing %q", ack.ResponseAction, ack.Payload, tt.block, tt.want)
			}
			if open := w.slack.OpenViews(manager); len(open) != 1 || open[0].ID != v.ID {
				t.Fatal("the form closed on a refusal; the person would have to fill it in again")
			}
			if n := len(w.slack.Messages(approvalChannel)); n != approvals {
				t.Fatal("a refused request reached the approvers")
			}
		})
	}
}

// TestSlowChecksEndInTheForm: when Entra ID is too slow to answer within Slack's three seconds,
// the form says it is checking, then shows the refusal beside its field, or the confirmation.
func TestSlowChecksEndInTheForm(t *testing.T) {
	w := newWorld(t)
	v := w.openForm(manager)
	w.graph.Hang(graphfake.OpGetUser, 2500*time.Millisecond)
	ack := w.submitForm(manager, v, form{target: outsider, lifetime: "2h", usage: "multi", reason: "new laptop"})
	if ack.ResponseAction != "update" || !strings.Contains(string(ack.Payload), "Checking your request") {
		t.Fatalf("slow checks: ack %s %s, want a checking view", ack.ResponseAction, ack.Payload)
	}
	var again slackfake.View
	w.waitFor("the form again with the refusal", func() bool {
		for _, cur := range w.slack.Views(manager) {
			if cur.ID == v.ID && cur.Event == "update" && strings.Contains(cur.PlainText(), "No Entra ID account found for outsider@example.com.") {
				again = cur
				return true
			}
		}
		return false
	})
	in := viewInputs(t, again)
	if in["target"]["initial_user"] != outsider || in["reason"]["initial_value"] != "new laptop" {
		t.Fatalf("the form came back without what was submitted: %v", in)
	}
	if opt, _ := in["usage"]["initial_option"].(map[string]any); opt["value"] != "multi" {
		t.Fatalf("the form came back with usage %v, want multi as submitted", opt)
	}

	ack = w.submitForm(manager, again, form{target: ada, lifetime: "2h", usage: "multi", reason: "new laptop"})
	if ack.ResponseAction != "update" {
		t.Fatalf("slow checks: ack %s, want a checking view", ack.ResponseAction)
	}
	w.waitFor("the form says the request was sent", func() bool {
		for _, cur := range w.slack.Views(manager) {
			if cur.ID == v.ID && strings.Contains(cur.PlainText(), "was sent to the approvers") {
				return true
			}
		}
		return false
	})
	if !strings.Contains(w.approvalMessage(1).PlainText(), "2h, multi-use") {
		t.Fatalf("approval message: %s", w.approvalMessage(1).PlainText())
	}
	w.dm(manager, "was sent to the approvers")
}

// TestPassForAFirstMorning: a manager asks on Monday for a pass that works from the new hire's
// first morning, in the manager's own time zone; approvers, the manager and the new hire see
// when it starts, Entra ID gets startDateTime, and the pass is not expired before its start
// plus lifetime however long it waited.
func TestPassForAFirstMorning(t *testing.T) {
	for name, opts := range map[string][]worldOption{"embedded": nil, "redis": {withRedis}} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, opts...)
			berlin, _ := time.LoadLocation("Europe/Berlin")
			london, _ := time.LoadLocation("Europe/London")
			day := w.clock().In(berlin).AddDate(0, 0, 2)
			start := time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, berlin)

			v := w.openForm(manager)
			ack := w.submitForm(manager, v, form{target: ada, lifetime: "1h", usage: "once", reason: "first day", date: start.Format("2006-01-02"), clock: "09:00"})
			if ack.ResponseAction != "" {
				t.Fatalf("ack %s %s, want the form closed", ack.ResponseAction, ack.Payload)
			}
			stamp := fmt.Sprintf("<!date^%d^", start.Unix())
			m := w.approvalMessage(1)
			if !strings.Contains(m.PlainText(), "*Starts:* "+stamp) {
				t.Fatalf("the approvers do not see when the pass starts:\n%s", m.PlainText())
			}
			if confirm := w.dm(manager, "was sent to the approvers"); !strings.Contains(confirm.PlainText(), "starts working "+stamp) {
				t.Fatalf("the confirmation does not say when the pass starts: %s", confirm.PlainText())
			}

			w.click(approver, m, "Approve")
			dm := w.dm(ada, "asked for a Temporary Access Pass for you")
			passes := w.graph.Passes(adaEntraID)
			if len(passes) != 1 || !passes[0].StartsAt.Equal(start) || passes[0].LifetimeMinutes != 60 {
				t.Fatalf("Entra ID holds %+v, want one 60-minute pass starting %v", passes, start)
			}
			if !strings.Contains(dm.PlainText(), "valid from "+stamp) {
				t.Fatalf("the new hire's DM does not say when the pass starts: %s", dm.PlainText())
			}
			w.dm(manager, "got a DM to reveal the pass; it is valid from "+stamp)

			// Hours pass, beyond approval plus lifetime: the pass has not even started, so it is
			// still there to reveal.
			w.advance(3 * time.Hour)
			w.click(ada, dm, "Reveal pass")
			code := w.codes(adaEntraID)[0]
			pass := w.view(ada, code)
			for _, want := range []string{
				"Works from:* " + start.In(london).Format("Mon 2 Jan 2006, 15:04 MST") + " (Europe/London)",
				"Valid until:* " + start.Add(time.Hour).In(london).Format("Mon 2 Jan 2006, 15:04 MST") + " (Europe/London)",
				"It works for one sign-in.", "1. Wait until", "<https://aka.ms/mysecurityinfo>", "Passkey",
			} {
				if !strings.Contains(pass.PlainText(), want) {
					t.Errorf("pass modal lacks %q:\n%s", want, pass.PlainText())
				}
			}
		})
	}
}

// TestTapStatusListsAndCancels: /tap status shows the requester their recent requests with a
// Cancel button on the pending one; only they can cancel it; cancelling updates the approval
// message, frees the target for a new request, is audited, and tells them.
func TestTapStatusListsAndCancels(t *testing.T) {
	for name, opts := range map[string][]worldOption{"embedded": nil, "redis": {withRedis}} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, opts...)
			w.tap(manager, "ext@example.com 1h once contractor")
			denied := w.approvalMessage(1)
			w.click(approver, denied, "Deny")
			w.dm(manager, "was denied")
			w.tap(manager, "<@UADA> 2h once new laptop")
			pending := w.approvalMessage(2)
			w.ephemeral(manager, "Ada Lovelace (ada@example.com) was sent to the approvers")

			w.tap(manager, "status")
			list := w.ephemeral(manager, "Your recent pass requests")
			text := list.PlainText()
			if strings.Index(text, "ada@example.com") > strings.Index(text, "ext@example.com") {
				t.Fatalf("the newest request is not listed first:\n%s", text)
			}
			for _, want := range []string{"Waiting for approval", "Denied by <@UAPPROVER>", "2h, one-time"} {
				if !strings.Contains(text, want) {
					t.Errorf("status lacks %q:\n%s", want, text)
				}
			}
			btns := list.Buttons()
			if len(btns) != 1 || btns[0].Text != "Cancel request" || btns[0].Value != button(t, pending, "Approve").Value {
				t.Fatalf("status buttons %+v, want Cancel on the pending request only", btns)
			}

			// Someone else forges a Cancel click: refused, nothing changes.
			w.forgedClick(outsider, general, list.TS, btns[0].ActionID, btns[0].Value)
			w.ephemeral(outsider, "Only the person who asked for this pass can cancel the request.")
			if labels(w.message(pending.Ref())) != "Approve,Deny" {
				t.Fatal("a forged Cancel changed the request")
			}

			if _, err := w.slack.ClickButton(w.ctx(), manager, list.Ref(), btns[0].ActionID, btns[0].Value); err != nil {
				t.Fatal(err)
			}
			w.waitFor("the approval message says withdrawn", func() bool {
				cur := w.message(pending.Ref())
				return strings.Contains(cur.PlainText(), "Withdrawn by <@UMANAGER>") && len(cur.Buttons()) == 0
			})
			w.dm(manager, "You withdrew your request for <@UADA>")
			w.waitFor("the list brought up to date", func() bool {
				for _, e := range w.slack.Ephemerals(manager) {
					if e.TS == list.TS && e.Replaced > 0 && strings.Contains(e.PlainText(), "Withdrawn by <@UMANAGER>") && len(e.Buttons()) == 0 {
						return true
					}
				}
				return false
			})
			w.waitFor("the withdrawal audited", func() bool {
				return strings.Contains(w.logs.String(), `"event":"cancelled","request_id":"`+btns[0].Value+`","actor":"UMANAGER"`)
			})

			// The target is free for a new request at once.
			w.tap(manager, "<@UADA> 2h once new laptop, second try")
			w.approvalMessage(3)
			if n := w.graph.Calls(graphfake.OpCreatePass); n != 0 {
				t.Fatalf("Graph created %d passes", n)
			}
		})
	}
}

// TestRequesterIsToldOfEveryChange: whatever happens to a request, its requester gets a DM.
func TestRequesterIsToldOfEveryChange(t *testing.T) {
	tests := []struct {
		name   string
		opts   []worldOption
		act    func(w *world, m slackfake.Message)
		wantDM string
	}{
		{name: "approved and issued", act: func(w *world, m slackfake.Message) { w.click(approver, m, "Approve") },
			wantDM: "was approved by <@UAPPROVER>. <@UADA> got a DM to reveal the pass; it is valid until"},
		{name: "denied", act: func(w *world, m slackfake.Message) { w.click(approver, m, "Deny") },
			wantDM: "was denied by <@UAPPROVER>"},
		{name: "expired without a decision", opts: []worldOption{withFastSweep, withEnv("TAP_REQUEST_TTL", "2h")},
			act:    func(w *world, m slackfake.Message) { w.advance(3 * time.Hour) },
			wantDM: "expired without a decision"},
		{name: "issue failed", act: func(w *world, m slackfake.Message) {
			w.graph.FailNext(graphfake.OpCreatePass, 403, 1, "")
			w.click(approver, m, "Approve")
		}, wantDM: "but the pass could not be made"},
		{name: "revealed", act: func(w *world, m slackfake.Message) {
			w.click(approver, m, "Approve")
			w.click(ada, w.dm(ada, "Reveal"), "Reveal pass")
		}, wantDM: "<@UADA> revealed the pass"},
		{name: "pass expired unrevealed", opts: []worldOption{withFastSweep}, act: func(w *world, m slackfake.Message) {
			w.click(approver, m, "Approve")
			w.dm(ada, "Reveal")
			w.advance(2 * time.Hour)
		}, wantDM: "expired before it was revealed"},
		{name: "revoked", act: func(w *world, m slackfake.Message) {
			w.click(approver, m, "Approve")
			w.dm(ada, "Reveal")
			w.waitFor("Revoke offered", func() bool { return labels(w.message(m.Ref())) == "Revoke" })
			w.click(approver, w.message(m.Ref()), "Revoke")
		}, wantDM: "was revoked by <@UAPPROVER>"},
		{name: "withdrawn", act: func(w *world, m slackfake.Message) {
			w.tap(manager, "status")
			list := w.ephemeral(manager, "Your recent pass requests")
			b := list.Buttons()[0]
			if _, err := w.slack.ClickButton(w.ctx(), manager, list.Ref(), b.ActionID, b.Value); err != nil {
				w.t.Fatal(err)
			}
		}, wantDM: "You withdrew your request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts...)
			w.tap(manager, "<@UADA> 1h once new laptop")
			m := w.approvalMessage(1)
			w.ephemeral(manager, "was sent to the approvers")
			tt.act(w, m)
			w.dm(manager, tt.wantDM)
		})
	}
}
