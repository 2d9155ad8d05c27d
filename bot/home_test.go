package bot

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
)

func TestHomeViewStaysWithinSlackLimitsAndEscapes(t *testing.T) {
	var pending []approvals.Decidable
	var mine []*approvals.Request
	for i := range 40 {
		r := sampleRequest(approvals.Pending)
		r.ID = fmt.Sprintf("tap_abcdefghijklm%03d", i)[:20]
		pending = append(pending, approvals.Decidable{Request: r, Authority: approvals.Authority{Group: "SAPPROVERS"}})
		mine = append(mine, r)
	}
	mine[1].RequesterRemindedAt = mine[1].CreatedAt.Add(time.Hour)
	decisions := []approvals.Event{{Event: approvals.EventDenied, Target: "<!here>@example.com", Requester: "UMANAGER", Lifetime: "1h", RequestID: "tap_abcdefghijklmnop"}}
	v := HomeView("UVIEWER", "", pending, mine, decisions, func(*approvals.Request) []string { return []string{"UAPPROVER"} })
	if n := len(v.Blocks.BlockSet); n > 100 {
		t.Fatalf("%d blocks, Slack allows 100", n)
	}
	if v.Type != slack.VTHomeTab || v.PrivateMetadata != "home:UVIEWER" {
		t.Fatalf("view type %s, metadata %q", v.Type, v.PrivateMetadata)
	}
	js := renderJSON(t, v)
	for _, want := range []string{"Waiting for your decision* (40)", "…and 25 more; see the approval channel.", "…and 35 more.",
		"you are in <!subteam^SAPPROVERS>, which is listed in TAP_APPROVERS.", "You reminded the approvers", "&lt;!here&gt;@example.com",
		"new laptop &lt;!channel&gt;"} {
		if !strings.Contains(js, jsonText(want)) {
			t.Errorf("Home tab lacks %q", want)
		}
	}
	for _, ping := range []string{"<!channel>", "<!here>", "<@UEVIL>"} {
		if strings.Contains(js, jsonText(ping)) {
			t.Errorf("Home tab lets user text ping %s", ping)
		}
	}
	if got := strings.Count(js, `"action_id":"`+ActionHomeApprove+`"`); got != homeMaxDecidable {
		t.Errorf("%d Approve buttons, want %d", got, homeMaxDecidable)
	}
	if got := strings.Count(js, `"action_id":"`+ActionRemind+`"`); got != homeMaxMine-1 {
		t.Errorf("%d Remind buttons, want %d (one request was already reminded)", got, homeMaxMine-1)
	}
}

func TestWhyYou(t *testing.T) {
	r := sampleRequest(approvals.Pending)
	r.Privileged = approvals.Privileges{Roles: []string{"Global Administrator"}}
	tests := []struct {
		a    approvals.Authority
		want string
	}{
		{approvals.Authority{}, "you are listed in TAP_APPROVERS."},
		{approvals.Authority{Group: "SIT"}, "you are in <!subteam^SIT>, which is listed in TAP_APPROVERS."},
		{approvals.Authority{Manager: true}, "you are the manager of ada@example.com in Entra ID, who is asked first (TAP_ROUTE_TO_MANAGER)."},
		{approvals.Authority{Protected: true}, "this is a privileged account (roles: Global Administrator), and you are a protected approver (TAP_PROTECTED_APPROVERS)."},
		{approvals.Authority{Protected: true, Group: "SSEC"}, "you are in <!subteam^SSEC>, a protected approver group (TAP_PROTECTED_APPROVERS)."},
	}
	for _, tt := range tests {
		if got := whyYou(r, tt.a); !strings.HasSuffix(got, tt.want) {
			t.Errorf("whyYou(%+v) = %q, want it to end %q", tt.a, got, tt.want)
		}
	}
}

func TestViewShows(t *testing.T) {
	v := HomeView("U1", "", []approvals.Decidable{{Request: sampleRequest(approvals.Pending)}}, nil, nil, nil)
	if !viewShows(v.Blocks, ActionHomeApprove, "tap_abcdefghijklmnop") || !viewShows(v.Blocks, ActionHomeDeny, "tap_abcdefghijklmnop") {
		t.Fatal("the Home tab's own buttons are not found")
	}
	for _, c := range [][2]string{{ActionHomeApprove, "tap_bbbbbbbbbbbbbbbb"}, {ActionApprove, "tap_abcdefghijklmnop"}, {ActionRemind, "tap_abcdefghijklmnop"}} {
		if viewShows(v.Blocks, c[0], c[1]) {
			t.Errorf("viewShows(%s, %s) = true for a button the tab does not show", c[0], c[1])
		}
	}
}
