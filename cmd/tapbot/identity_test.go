package main

import (
	"strings"
	"testing"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

const (
	approverAlias = "UAPPRALIAS" // a second Slack account of the approver
	guest         = "UGUEST"     // in Slack and among the approvers, but in no Entra ID account
)

// withApproverAlias gives the approver a second Slack account whose email is another address of
// their one Entra ID account (UPN approver@example.com, which their usual Slack account shows;
// mail approver.alias@example.com; an alias a.approver@example.com among its proxy addresses).
// The alias and a guest without an Entra ID account are approvers through SAPPROVERS.
func withApproverAlias(aliasEmail string) worldOption {
	return func(w *world) {
		w.graph.AddUser(graphfake.User{ID: approverEntraID, UPN: "approver@example.com", Mail: "approver.alias@example.com",
			DisplayName: "Approver", ProxyAddresses: []string{"SMTP:approver.alias@example.com", "smtp:a.approver@example.com"}})
		w.slack.AddUser(slackfake.User{ID: approverAlias, Name: "approver-2", Email: aliasEmail})
		w.slack.AddUser(slackfake.User{ID: guest, Name: "guest", Email: "guest@partner.example"})
		w.slack.AddGroup("SAPPROVERS", groupie, approverAlias, guest)
		members := []string{manager, ada, approver, groupie, outsider, approverAlias, guest}
		w.slack.AddChannel(approvalChannel, members...)
		w.slack.AddChannel(general, members...)
	}
}

// TestFourEyesComparesEntraAccounts: the requester, the approver and the target are compared by
// Entra ID account, so a person with a second Slack account can neither approve their own request
// nor ask for a pass for themselves, and a Slack account tapbot cannot place in Entra ID decides
// nothing.
func TestFourEyesComparesEntraAccounts(t *testing.T) {
	for _, alias := range []struct{ name, email string }{
		{"alias by mail", "approver.alias@example.com"},
		{"alias by proxy address", "a.approver@example.com"},
	} {
		t.Run(alias.name, func(t *testing.T) {
			w := newWorld(t, withApproverAlias(alias.email))

			// The alias asks for someone without Slack (the pass would come to the alias), and
			// the approver's usual account approves: one person, four eyes in name only.
			w.tap(approverAlias, "ext@example.com 1h once contractor laptop")
			forExt := w.approvalMessage(1)
			w.click(approver, forExt, "Approve")
			w.ephemeral(approver, "You asked for this pass from another Slack account: both belong to the same Entra ID account, so someone else has to approve it.")
			w.click(approverAlias, forExt, "Approve")
			w.ephemeral(approverAlias, "You asked for this pass, so someone else has to approve it.")
			if n := len(w.graph.Passes(extEntraID)); n != 0 {
				t.Fatalf("%d passes made for ext@example.com, approved by its requester", n)
			}

			// With TAP_ALLOW_SELF_REQUEST unset, a pass for one's own Entra ID account is refused
			// whichever Slack account or address names it.
			w.tap(approver, "<@"+approverAlias+"> 1h once lost my phone")
			w.ephemeral(approver, "You cannot ask for a pass for yourself")
			w.tap(approverAlias, "approver@example.com 1h once lost my phone")
			w.ephemeral(approverAlias, "You cannot ask for a pass for yourself")
			if n := len(w.slack.Messages(approvalChannel)); n != 1 {
				t.Fatalf("%d approval messages; a self request reached the approvers", n)
			}

			// A pass for the approver's Entra ID account: their alias may not approve it, someone
			// else may.
			w.tap(manager, "<@UAPPROVER> 1h once new phone")
			forApprover := w.approvalMessage(2)
			w.click(approverAlias, forApprover, "Approve")
			w.ephemeral(approverAlias, "This pass is for your own Entra ID account (approver@example.com), so someone else has to approve it.")
			if n := len(w.graph.Passes(approverEntraID)); n != 0 {
				t.Fatalf("%d passes made for the approver, approved by their alias", n)
			}
			w.click(groupie, forApprover, "Approve")
			w.dm(approver, "Reveal")
		})
	}
}

// TestSlackAccountWithoutEntraAccount: a Slack user whose email is no address of any Entra ID
// account can be nobody's second pair of eyes, and cannot ask: tapbot could not tell them apart
// from the target or the approver.
func TestSlackAccountWithoutEntraAccount(t *testing.T) {
	w := newWorld(t, withApproverAlias("approver.alias@example.com"))
	w.tap(manager, "<@UADA> 1h once new laptop")
	m := w.approvalMessage(1)
	w.click(guest, m, "Approve")
	w.ephemeral(guest, "You cannot approve passes: tapbot cannot tell who you are in Entra ID, because your Slack email, guest@partner.example, is not the user principal name, mail or alias of any Entra ID account.")
	if n := len(w.graph.Passes(adaEntraID)); n != 0 {
		t.Fatalf("%d passes made on the approval of a Slack account tapbot cannot place", n)
	}
	w.click(approver, m, "Approve")
	w.dm(ada, "Reveal")

	w.tap(guest, "<@UOUTSIDER> 1h once lost phone")
	refusal := w.ephemeral(guest, "You cannot ask for passes: tapbot cannot tell who you are in Entra ID")
	if !strings.Contains(refusal.PlainText(), "Ask your Slack or Entra ID admin to fix your Slack email") {
		t.Fatalf("the refusal does not say what to do: %s", refusal.PlainText())
	}
	if n := len(w.slack.Messages(approvalChannel)); n != 1 {
		t.Fatalf("%d approval messages; the guest's request reached the approvers", n)
	}
}

// TestApproverLookupFailsClosed: when Entra ID cannot say who clicked Approve, nothing is done
// and the click can be repeated once it answers.
func TestApproverLookupFailsClosed(t *testing.T) {
	w := newWorld(t)
	w.tap(manager, "<@UADA> 1h once new laptop")
	m := w.approvalMessage(1)
	w.graph.FailNext(graphfake.OpGetUser, 429, 100, "0")
	w.click(approver, m, "Approve")
	w.ephemeral(approver, "tapbot could not check in Entra ID who you are, so nothing was done: Microsoft Graph is throttling or unavailable")
	if n := len(w.graph.Passes(adaEntraID)); n != 0 {
		t.Fatalf("%d passes made although the approver could not be checked", n)
	}
	w.graph.FailNext(graphfake.OpGetUser, 0, 0, "")
	w.click(approver, m, "Approve")
	w.dm(ada, "Reveal")
}
