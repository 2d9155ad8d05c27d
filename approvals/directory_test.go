package approvals_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestPassNeverPrintsItsCode prints a pass every way code might: fmt with every verb, an error
// that wraps it, json.Marshal, and slog's JSON and text handlers, alone, by pointer, in a slice
// and in a struct. The code must be in none, and a log line still says which pass it was.
func TestPassNeverPrintsItsCode(t *testing.T) {
	const code = "Qz8!x2Lk-SECRET"
	p := approvals.Pass{ID: "method-1", Code: code, StartsAt: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), Lifetime: time.Hour, UsableOnce: true}
	holder := struct {
		Name string
		Pass approvals.Pass
	}{"holder", p}

	printed := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		printed["fmt "+verb] = fmt.Sprintf(verb, p)
		printed["fmt "+verb+" of a pointer"] = fmt.Sprintf(verb, &p)
		printed["fmt "+verb+" of a slice"] = fmt.Sprintf(verb, []approvals.Pass{p})
		printed["fmt "+verb+" of a struct"] = fmt.Sprintf(verb, holder)
	}
	printed["error"] = fmt.Errorf("create pass %v: %w", p, errors.New("boom")).Error()
	for what, v := range map[string]any{"value": p, "pointer": &p, "slice": []approvals.Pass{p}, "struct": holder} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%s): %v", what, err)
		}
		printed["json "+what] = string(b)
	}
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	}
	for name, h := range handlers {
		for what, attr := range map[string]slog.Attr{
			"value": slog.Any("pass", p), "pointer": slog.Any("pass", &p), "slice": slog.Any("pass", []approvals.Pass{p}),
			"struct": slog.Any("pass", holder), "group": slog.Group("g", "pass", p),
		} {
			var buf bytes.Buffer
			slog.New(h(&buf)).Info("created", attr)
			printed["slog "+name+" "+what] = buf.String()
		}
	}

	for what, out := range printed {
		t.Run(what, func(t *testing.T) {
			if strings.Contains(out, code) {
				t.Fatalf("the code is printed: %s", out)
			}
		})
	}
	// Logged, a pass is fields of the log line (LogValue), not a string to parse.
	for name, want := range map[string]string{
		"slog json value":   `"pass":{"id":"method-1","starts_at":"2026-11-23T09:00:00Z","lifetime":"1h0m0s","usable_once":true`,
		"slog json pointer": `"pass":{"id":"method-1"`,
		"slog text value":   "pass.id=method-1 pass.starts_at=2026-11-23T09:00:00.000Z pass.lifetime=1h0m0s pass.usable_once=true",
		"slog text group":   "g.pass.id=method-1",
	} {
		if !strings.Contains(printed[name], want) {
			t.Errorf("%s does not say which pass it was (%s): %s", name, want, printed[name])
		}
	}
}
