package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemo runs `tapbot demo` as a newcomer would and checks the transcript shows the whole
// product: the request, the approval, the DM without the pass, the pass exactly once where Ada
// revealed it, and the refused second reveal.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	code, err := playDemo(context.Background(), &out)
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	transcript := out.String()
	if code == "" || strings.Count(transcript, code) != 1 {
		t.Fatalf("the simulated pass appears %d times in the transcript, want exactly once:\n%s", strings.Count(transcript, code), transcript)
	}
	for _, want := range []string{"/tap @ada 2h once", "[Approve] [Deny]", "Approved by @Ari", "it holds no pass", "[Reveal pass]",
		"window Slack keeps no copy", "already revealed", "Revealed", "It now exists only in Entra ID"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	passAt := strings.Index(transcript, code)
	if before := strings.LastIndex(transcript[:passAt], "▶ "); !strings.HasPrefix(transcript[before:], "▶ Ada (new hire) clicks [Reveal pass]") {
		t.Fatalf("the pass is shown outside Ada's reveal:\n%s", transcript)
	}
}

// TestDemoNeedsNoConfiguration runs the demo as a separate process with an empty environment.
func TestDemoNeedsNoConfiguration(t *testing.T) {
	w := &world{t: t, env: map[string]string{}}
	out, err := w.command("demo")
	if err != nil || !strings.Contains(out, "the pass was shown once") {
		t.Fatalf("tapbot demo with no configuration = %v\n%s", err, out)
	}
}
