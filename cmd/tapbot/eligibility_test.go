package main

import (
	"fmt"
	"testing"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// notAPersonAccount is a Slack user, among the approvers through SAPPROVERS, whose Entra ID
// account is not one accountable member of the tenant.
const notAPersonAccount = "UNOTAPERSON"

// withAccount gives notAPersonAccount the Slack email email and the Entra ID account u.
func withAccount(email string, u graphfake.User) worldOption {
	return func(w *world) {
		w.graph.AddUser(u)
		w.slack.AddUser(slackfake.User{ID: notAPersonAccount, Name: "not-a-person", Email: email})
		w.slack.AddGroup("SAPPROVERS", groupie, notAPersonAccount)
		members := []string{manager, ada, approver, groupie, outsider, notAPersonAccount}
		w.slack.AddChannel(approvalChannel, members...)
		w.slack.AddChannel(general, members...)
	}
}

// TestFourEyesRefusesDisabledAndGuestAccounts: a Slack user whose Entra ID account is disabled
// (a shared mailbox) or a guest (by userType, or by the #EXT# UPN an admin cannot hide by
// changing userType) can neither ask for a pass nor approve one, and is told why; no pass is
// made for such an account either. graphfake answers accountEnabled and userType only when they
// are $selected, as Graph does, so a query that forgets them fails here.
func TestFourEyesRefusesDisabledAndGuestAccounts(t *testing.T) {
	tests := []struct {
		name, email string
		user        graphfake.User
		why         string // what the refusals say about the account
		target      string // what the refusal of a pass for it says
	}{
		{name: "shared mailbox", email: "helpdesk@example.com",
			user:   graphfake.User{UPN: "helpdesk@example.com", Mail: "helpdesk@example.com", DisplayName: "Helpdesk", Disabled: true},
			why:    "belongs to the Entra ID account helpdesk@example.com is disabled (shared mailboxes are disabled accounts too)",
			target: "The Entra ID account helpdesk@example.com is disabled, so nobody could sign in with a pass for it"},
		{name: "guest", email: "pat@fabrikam.example",
			user:   graphfake.User{UPN: "pat_fabrikam.example#EXT#@example.com", Mail: "pat@fabrikam.example", DisplayName: "Pat (Fabrikam)", UserType: "Guest"},
			why:    "belongs to the Entra ID account pat_fabrikam.example#EXT#@example.com is a guest account from another organisation",
			target: "pat_fabrikam.example#EXT#@example.com is a guest account from another organisation"},
		{name: "external account made a member", email: "lee@fabrikam.example",
			user:   graphfake.User{UPN: "lee_fabrikam.example#EXT#@example.com", Mail: "lee@fabrikam.example", DisplayName: "Lee (Fabrikam)", UserType: "Member"},
			why:    "belongs to the Entra ID account lee_fabrikam.example#EXT#@example.com is a guest account from another organisation",
			target: "lee_fabrikam.example#EXT#@example.com is a guest account from another organisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.user = withFixedID(tt.user)
			w := newWorld(t, withAccount(tt.email, tt.user))

			w.tap(notAPersonAccount, "<@UADA> 1h once new laptop")
			w.ephemeral(notAPersonAccount, fmt.Sprintf("You cannot ask for passes: your Slack email, %s, %s.", tt.email, tt.why))

			w.tap(manager, "<@UADA> 1h once new laptop")
			m := w.approvalMessage(1)
			w.click(notAPersonAccount, m, "Approve")
			w.ephemeral(notAPersonAccount, fmt.Sprintf("You cannot approve passes: your Slack email, %s, %s.", tt.email, tt.why))
			if n := len(w.graph.Passes(adaEntraID)); n != 0 {
				t.Fatalf("%d passes made on the approval of a %s", n, tt.name)
			}
			w.click(approver, m, "Approve")
			w.dm(ada, "Reveal")

			w.tap(manager, tt.email+" 1h once new laptop")
			w.ephemeral(manager, tt.target)
			if n := len(w.slack.Messages(approvalChannel)); n != 1 {
				t.Fatalf("%d approval messages; a refused request reached the approvers", n)
			}
			if n := len(w.graph.Passes(tt.user.ID)); n != 0 {
				t.Fatalf("%d passes made for a %s", n, tt.name)
			}
		})
	}
}

// withFixedID gives a test user a fixed object ID, so its passes can be looked up.
func withFixedID(u graphfake.User) graphfake.User {
	u.ID = "00000000-0000-0000-0000-0000000000f0"
	return u
}
