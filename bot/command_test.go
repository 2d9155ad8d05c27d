package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Command
		wantErr string // a fragment of the message the person sees
	}{
		{name: "alone opens the form", text: "  ", want: Command{Modal: true}},
		{name: "help", text: "help", want: Command{Help: true}},
		{name: "status", text: " Status ", want: Command{Status: true}},
		{name: "status needs no more words", text: "status of ada", wantErr: "first word must be the person"},
		{name: "mention with defaults", text: "<@U123ABC|ada> new laptop",
			want: Command{TargetUserID: "U123ABC", UsableOnce: true, Reason: "new laptop"}},
		{name: "bare mention", text: "<@U123ABC> lost phone",
			want: Command{TargetUserID: "U123ABC", UsableOnce: true, Reason: "lost phone"}},
		{name: "lifetime and multi", text: "<@U1AB> 1h30m multi setting up Windows Hello",
			want: Command{TargetUserID: "U1AB", Lifetime: 90 * time.Minute, Reason: "setting up Windows Hello"}},
		{name: "days", text: "<@U1AB> 1d once onboarding",
			want: Command{TargetUserID: "U1AB", Lifetime: 24 * time.Hour, UsableOnce: true, Reason: "onboarding"}},
		{name: "email", text: "ada@example.com 90m new hire",
			want: Command{TargetEmail: "ada@example.com", Lifetime: 90 * time.Minute, UsableOnce: true, Reason: "new hire"}},
		{name: "mailto link", text: "<mailto:ada@example.com|ada@example.com> 2h new hire",
			want: Command{TargetEmail: "ada@example.com", Lifetime: 2 * time.Hour, UsableOnce: true, Reason: "new hire"}},
		{name: "once word kept in reason when not first", text: "<@U1AB> reset once more",
			want: Command{TargetUserID: "U1AB", UsableOnce: true, Reason: "reset once more"}},
		{name: "reason keeps inner spacing", text: "<@U1AB> 2h  a  b",
			want: Command{TargetUserID: "U1AB", Lifetime: 2 * time.Hour, UsableOnce: true, Reason: "a  b"}},
		{name: "slack entities are undone once", text: "<@U1AB> R&amp;D &lt;b&gt; laptop",
			want: Command{TargetUserID: "U1AB", UsableOnce: true, Reason: "R&D <b> laptop"}},
		{name: "zero lifetime is an error", text: "<@U1AB> 0m reason", wantErr: "zero"},
		{name: "negative lifetime is an error", text: "<@U1AB> -1h reason", wantErr: "negative"},
		{name: "lifetime with a bad unit", text: "<@U1AB> 45s reason", wantErr: "unknown unit"},
		{name: "number-led word is a lifetime, not a reason", text: "<@U1AB> 2fa reset", wantErr: "unknown unit"},
		{name: "missing reason", text: "<@U1AB> 2h once", wantErr: "reason is required"},
		{name: "only a user", text: "<@U1AB>", wantErr: "reason is required"},
		{name: "unlinked handle", text: "@ada 2h lost phone", wantErr: "could not tell who"},
		{name: "not a person", text: "ada 2h lost phone", wantErr: "first word must be the person"},
		{name: "bad email", text: "ada@ 2h lost", wantErr: "not a valid email"},
		{name: "user text in errors is escaped", text: "<!channel>@x", wantErr: "&lt;!channel&gt;"},
		{name: "reason too long", text: "<@U1AB> " + strings.Repeat("x", 2001), wantErr: "under 2,000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.text)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseCommand(%q) = %+v, want an error containing %q", tt.text, got, tt.wantErr)
				}
				if approvals.ErrorCode(err) != approvals.Invalid {
					t.Fatalf("error code = %q, want invalid", approvals.ErrorCode(err))
				}
				if msg := userMessage(err); !strings.Contains(msg, tt.wantErr) {
					t.Fatalf("message %q does not contain %q", msg, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.text, err)
			}
			if got != tt.want {
				t.Fatalf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "help", "status", "<@U1|a> 2h once r", "a@b.c -1h x", "<mailto:a@b.c|a@b.c> 1d multi y", "@x", "<@U1> 99999999999d r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCommand(text)
		if err != nil {
			if approvals.UserMessage(err) == approvals.SomethingWentWrong {
				t.Fatalf("parse error without a user message: %v", err)
			}
			return
		}
		if !c.Help && !c.Modal && !c.Status && (c.Reason == "" || c.TargetUserID == "" && c.TargetEmail == "" || c.Lifetime < 0) {
			t.Fatalf("accepted an incomplete command %+v from %q", c, text)
		}
	})
}
