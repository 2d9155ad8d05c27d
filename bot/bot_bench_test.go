package bot_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/bot"
)

// The benchmarks below cover what every envelope pays before or right after its ack: parsing
// /tap and rendering Block Kit to the JSON slack-go sends. BENCHMARKS.md records their results.

var sinkCommand bot.Command

func BenchmarkParseCommand(b *testing.B) {
	inputs := map[string]string{
		"mention": "<@UADA|ada> 2h once new laptop, setting up a passkey",
		"email":   "<mailto:ada@example.com|ada@example.com> 1h30m multi contractor onboarding &amp; badge",
		"help":    "help",
		"invalid": "<@UADA> -1h once lost phone",
	}
	for name, text := range inputs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkCommand, _ = bot.ParseCommand(text)
			}
		})
	}
}

// benchRequest is a request as it looks when an approver sees it (pending) or the recipient gets
// the Reveal DM (issued).
func benchRequest(state approvals.State) *approvals.Request {
	now := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	return &approvals.Request{
		ID:        approvals.NewID(),
		Requester: "UMANAGER",
		Target: approvals.Target{SlackID: "UADA", EntraID: "00000000-0000-0000-0000-00000000000a",
			UPN: "ada@example.com", DisplayName: "Ada Lovelace", Email: "ada@example.com"},
		Recipient:       "UADA",
		Lifetime:        2 * time.Hour,
		UsableOnce:      true,
		Reason:          "new laptop, setting up a passkey <@channel> & co",
		State:           state,
		CreatedAt:       now,
		ExpiresAt:       now.Add(24 * time.Hour),
		DecidedBy:       "UAPPROVER",
		DecidedAt:       now.Add(time.Minute),
		PassExpiresAt:   now.Add(2 * time.Hour),
		ApprovalMessage: approvals.MessageRef{Channel: "CAPPROVALS", TS: "1741000000.000100"},
		RevealMessage:   approvals.MessageRef{Channel: "D0ADA", TS: "1741000060.000200"},
	}
}

var sinkJSON []byte

// BenchmarkApprovalBlocks renders the approval message and marshals it as chat.postMessage does.
func BenchmarkApprovalBlocks(b *testing.B) {
	for _, state := range []approvals.State{approvals.Pending, approvals.Issued} {
		r := benchRequest(state)
		b.Run(string(state), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				text := bot.ApprovalText(r)
				blocks, err := json.Marshal(bot.ApprovalBlocks(r))
				if err != nil {
					b.Fatal(err)
				}
				sinkJSON = append(blocks, text...)
			}
		})
	}
}

// BenchmarkRevealBlocks renders the recipient's DM and marshals it.
func BenchmarkRevealBlocks(b *testing.B) {
	for _, state := range []approvals.State{approvals.Issued, approvals.Revealed} {
		r := benchRequest(state)
		b.Run(string(state), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				text := bot.RevealText(r)
				blocks, err := json.Marshal(bot.RevealBlocks(r))
				if err != nil {
					b.Fatal(err)
				}
				sinkJSON = append(blocks, text...)
			}
		})
	}
}
