package bot

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// worstRequest is a request whose every piece of user and directory text is as long as tapbot
// lets it be and grows fivefold when escaped, with every optional line shown.
func worstRequest(state approvals.State, slackTarget bool) *approvals.Request {
	amps := func(n int) string { return strings.Repeat("&", n) }
	r := sampleRequest(state)
	r.ID = "tap_" + strings.Repeat("z", 16)
	r.Requester, r.DecidedBy, r.RevokedBy, r.CancelledBy = "W0123456789AB", "W0123456789AC", "W0123456789AD", ""
	r.Target = approvals.Target{SlackID: "W0123456789AE", EntraID: "e1", UPN: amps(113), DisplayName: amps(256)}
	r.Recipient = r.Target.SlackID
	if !slackTarget {
		r.Target.SlackID, r.Recipient = "", r.Requester
	}
	r.Reason = "\n" + amps(2000)
	r.Lifetime, r.UsableOnce = 30*24*time.Hour, false
	r.StartsAt = r.CreatedAt.Add(48 * time.Hour)
	r.PassStartsAt, r.PassExpiresAt = r.StartsAt, r.StartsAt.Add(r.Lifetime)
	r.ReplacesActivePass = true
	r.Manager = "W0123456789AF"
	r.Privileged = approvals.Privileges{Roles: []string{amps(256), amps(256)}, Groups: []string{amps(256)}}
	r.Failure = amps(2000)
	r.ReportedAt, r.RegisteredAt, r.Registered = r.CreatedAt.Add(time.Hour), r.CreatedAt.Add(2*time.Hour), amps(256)
	r.Resubmitted = "tap_" + strings.Repeat("y", 16)
	r.ApprovalMessage = approvals.MessageRef{Channel: "C0123456789", TS: "1.2"}
	return r
}

var allStates = []approvals.State{approvals.Pending, approvals.Issuing, approvals.Issued, approvals.Revealing, approvals.Revealed,
	approvals.Denied, approvals.Expired, approvals.Failed, approvals.Cancelled, approvals.Revoked}

// hostileError is a refusal whose sentence quotes hostile text and that names many who may act.
func hostileError() error {
	e := approvals.Errorf(approvals.Forbidden, "There is already a request for %s waiting.", strings.Repeat("&", 2000))
	for range 60 {
		e.Who = append(e.Who, "S0123456789AB")
	}
	return e
}

// TestRenderedTextFitsSlack renders every surface with worstRequest in every state and holds
// each message and view to the rules the Slack fake enforces: a share of the 3,000 characters of
// a section or context for each field leaves the fixed text room wherever it is.
func TestRenderedTextFitsSlack(t *testing.T) {
	message := func(t *testing.T, what, text string, blocks []slack.Block) {
		t.Helper()
		raw, err := json.Marshal(blocks)
		if err != nil {
			t.Fatal(err)
		}
		if blocks == nil {
			raw = nil
		}
		if errs := slackfake.CheckMessage(text, raw); errs != nil {
			t.Errorf("Slack would refuse %s: %s", what, strings.Join(errs, "; "))
		}
	}
	view := func(t *testing.T, what string, v any) {
		t.Helper()
		if errs := slackfake.CheckView([]byte(renderJSON(t, v))); errs != nil {
			t.Errorf("Slack would refuse %s: %s", what, strings.Join(errs, "; "))
		}
	}
	for _, slackTarget := range []bool{true, false} {
		for _, state := range allStates {
			name := string(state)
			if !slackTarget {
				name += " without Slack account"
			}
			t.Run(name, func(t *testing.T) {
				r := worstRequest(state, slackTarget)
				message(t, "the approval message", ApprovalText(r), ApprovalBlocks(r))
				message(t, "the Reveal DM", RevealText(r), RevealBlocks(r))
				message(t, "an alert", "Temporary Access Pass alert", AlertBlocks(r, alertText(approvals.Event{Event: approvals.EventReported, Actor: r.Recipient})))
				text := ":outbox_tray: " + confirmation(r)
				message(t, "the requester's confirmation", text, confirmationBlocks(text, r))
				view(t, "the confirmation modal", MessageModal("Request sent", text))
				message(t, "the requester's update", requesterUpdate(r), nil)
				message(t, "the approver's update", approverUpdate(r), nil)
				message(t, "the audit line", AuditLine(approvals.Event{Event: "requested", Target: r.Target.UPN, Reason: r.Reason, Detail: r.Failure}), nil)
				message(t, "the registration news", registrationText(approvals.Registration{Request: r, Method: approvals.AuthMethod{Kind: approvals.MethodFIDO2, Name: r.Registered}}), nil)
				view(t, "the pass", PassModalIn(r, "Xy7#k<2&", time.UTC))
				view(t, "the refusal modal", MessageModal("Cannot show the pass", ":no_entry: "+userMessage(hostileError())))

				rs := make([]*approvals.Request, 15)
				for i := range rs {
					rs[i] = r.Clone()
					rs[i].ID = fmt.Sprintf("tap_%016d", i)
				}
				message(t, "/tap status", "Your recent Temporary Access Pass requests", StatusBlocks(rs[:statusLimit]))

				var pending []approvals.Decidable
				var events []approvals.Event
				authorities := []approvals.Authority{{Manager: true}, {Protected: true, Group: "S0123456789AB"}, {Protected: true}, {Group: "S0123456789AB"}, {}}
				for i, r := range rs[:homeMaxDecidable] {
					pending = append(pending, approvals.Decidable{Request: r, Authority: authorities[i%len(authorities)]})
				}
				for range homeMaxDecisions {
					events = append(events, approvals.Event{Event: approvals.EventDenied, Target: r.Target.UPN, Requester: r.Requester, Lifetime: "30d", RequestID: r.ID, Time: r.CreatedAt})
				}
				notice := ":warning: " + userMessage(hostileError()) + "\n:warning: Some of this could not be loaded: " + userMessage(hostileError())
				approvers := func(*approvals.Request) []string { return approvals.WhoMay(hostileError()) }
				view(t, "App Home", HomeView("W0123456789AB", notice, pending, rs[:homeMaxMine], events, approvers))
				for _, r := range rs {
					r.Manager = ""
				}
				view(t, "App Home, approvers named", HomeView("W0123456789AB", notice, pending, rs[:homeMaxMine], events, approvers))

				form := RequestForm(FormSpec{Lifetimes: []time.Duration{time.Hour}, Default: time.Hour,
					Draft:  &approvals.Draft{Reason: strings.Repeat("&", 2000), TargetUserID: r.Target.SlackID},
					Errors: map[string]string{formTarget: approvals.UserMessage(hostileError()), formReason: approvals.UserMessage(hostileError())}})
				view(t, "the request form shown again", form)
			})
		}
	}
}
