package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/config"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true}, {"90m", 90 * time.Minute, true}, {"1h30m", 90 * time.Minute, true},
		{"1d", 24 * time.Hour, true}, {"1d12h", 36 * time.Hour, true}, {"12h1d", 36 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true}, {"1.5h", 90 * time.Minute, true}, {"1.5d", 36 * time.Hour, true},
		{"300ms", 300 * time.Millisecond, true}, {"1D", 24 * time.Hour, true}, {"1H30M", 90 * time.Minute, true},
		{" 2h ", 2 * time.Hour, true}, {"0", 0, true}, {"-1h", -time.Hour, true}, {"1d-1h", 0, false},
		{"", 0, false}, {"1", 0, false}, {"h", 0, false}, {"d", 0, false}, {"1x", 0, false}, {"1d1", 0, false},
		{"soon", 0, false}, {"1 d", 0, false}, {"999999999999d", 0, false}, {"106751d", 106751 * 24 * time.Hour, true}, {"106752d", 0, false},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestEveryDurationTakesTheSameForms: each variable (and --since) reads the forms of issue 11
// with one grammar; what it refuses, it refuses for its range, naming itself, echoing what was
// typed and saying the range.
func TestEveryDurationTakesTheSameForms(t *testing.T) {
	settings := append(config.Durations, config.AuditSince)
	forms := []string{"30s", "90m", "1h30m", "1d", "1d12h", "2H"}
	for _, s := range settings {
		t.Run(s.Name, func(t *testing.T) {
			min, _ := config.ParseDuration(s.Min)
			max, _ := config.ParseDuration(s.Max)
			for _, v := range forms {
				d, _ := config.ParseDuration(v)
				got, err := s.Read(v)
				inRange := d >= min && d <= max && (!s.WholeMinutes || d%time.Minute == 0)
				if inRange {
					if err != nil || got != d {
						t.Errorf("Read(%q) = %v, %v; want %v", v, got, err, d)
					}
					continue
				}
				want := s.Name + `: "` + v + `" is too `
				if d >= min && d <= max {
					want = s.Name + `: "` + v + `" is not a whole number of minutes`
				}
				if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "use "+s.Range()) &&
					!strings.Contains(err.Error(), "use "+s.Range()+" in minutes") {
					t.Errorf("Read(%q) error = %v, want %q… naming the range %q", v, err, want, s.Range())
				}
			}
		})
	}
}

// TestDurationBounds: each setting's bounds are inclusive, and a hair outside them is refused
// with the value echoed exactly as typed.
func TestDurationBounds(t *testing.T) {
	for _, s := range append(config.Durations, config.AuditSince) {
		t.Run(s.Name, func(t *testing.T) {
			min, _ := config.ParseDuration(s.Min)
			max, _ := config.ParseDuration(s.Max)
			step := time.Millisecond
			if s.WholeMinutes {
				step = time.Minute
			}
			tests := []struct {
				typed string
				want  string // "" accepts
			}{
				{s.Min, ""},
				{s.Max, ""},
				{(min - step).String(), "is too short"},
				{(max + step).String(), "is too long"},
				{"0", "is too short"},
				{"-" + s.Max, "is too short"},
				{"forever", "is not a duration"},
				{"30", "is not a duration"},
			}
			if s.Off {
				tests = append(tests, struct{ typed, want string }{"OFF", ""})
			} else {
				tests = append(tests, struct{ typed, want string }{"off", "is not a duration"})
			}
			for _, tt := range tests {
				_, err := s.Read(tt.typed)
				if tt.want == "" {
					if err != nil {
						t.Errorf("Read(%q) = %v, want it accepted", tt.typed, err)
					}
					continue
				}
				want := s.Name + ": " + `"` + tt.typed + `" ` + tt.want
				if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), s.Range()) {
					t.Errorf("Read(%q) = %v, want %q… with %q", tt.typed, err, want, s.Range())
				}
			}
			if d, err := s.Read(""); err != nil || d != mustParse(t, s.Default) {
				t.Errorf("Read(\"\") = %v, %v; want the default %s", d, err, s.Default)
			}
		})
	}
}

func mustParse(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := config.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDurationsThroughLoad reads the examples through Load, the way the bot does.
func TestDurationsThroughLoad(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		check   func(config.Config) time.Duration
		want    time.Duration
		wantErr string
	}{
		{"request TTL in seconds of minutes", map[string]string{"TAP_REQUEST_TTL": "600s", "TAP_REMIND_AFTER": "5m"}, func(c config.Config) time.Duration { return c.RequestTTL }, 10 * time.Minute, ""},
		{"request TTL too short, echoed", map[string]string{"TAP_REQUEST_TTL": "30s"}, nil, 0, `TAP_REQUEST_TTL: "30s" is too short; use from 5m to 30d`},
		{"remind after in days", map[string]string{"TAP_REMIND_AFTER": "1d", "TAP_REQUEST_TTL": "1d12h"}, func(c config.Config) time.Duration { return c.RemindAfter }, 24 * time.Hour, ""},
		{"group cache in days", map[string]string{"TAP_GROUP_CACHE_TTL": "1d"}, func(c config.Config) time.Duration { return c.GroupCacheTTL }, 24 * time.Hour, ""},
		{"graph timeout as before", map[string]string{"TAP_GRAPH_TIMEOUT": "30s"}, func(c config.Config) time.Duration { return c.GraphTimeout }, 30 * time.Second, ""},
		{"graph timeout too long", map[string]string{"TAP_GRAPH_TIMEOUT": "1d"}, nil, 0, `TAP_GRAPH_TIMEOUT: "1d" is too long; use from 100ms to 5m`},
		{"max lifetime typed in hours stays in hours", map[string]string{"TAP_MAX_LIFETIME": "48h", "TAP_DEFAULT_LIFETIME": "3d"}, nil, 0,
			`TAP_DEFAULT_LIFETIME: "3d" is longer than TAP_MAX_LIFETIME ("48h")`},
		{"lifetime in whole minutes only", map[string]string{"TAP_DEFAULT_LIFETIME": "10m30s"}, nil, 0,
			`TAP_DEFAULT_LIFETIME: "10m30s" is not a whole number of minutes, which is how Entra ID counts a pass's lifetime`},
		{"lifetime from seconds that are whole minutes", map[string]string{"TAP_MAX_LIFETIME": "7200s"}, func(c config.Config) time.Duration { return c.MaxLifetime }, 2 * time.Hour, ""},
		{"audit retention", map[string]string{"TAP_AUDIT_RETENTION": "2160h"}, func(c config.Config) time.Duration { return c.AuditRetention }, 90 * 24 * time.Hour, ""},
		{"shutdown", map[string]string{"TAP_SHUTDOWN_TIMEOUT": "1m30s"}, func(c config.Config) time.Duration { return c.ShutdownTimeout }, 90 * time.Second, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(tt.set))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to start %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "lifetime \"") || strings.Contains(err.Error(), "2d") {
					t.Errorf("error reads %q: a TTL is not a lifetime, and 48h was typed, not 2d", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.check(c); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDurationDefaultsMatchTheDomain keeps config's written defaults and approvals' own the same.
func TestDurationDefaultsMatchTheDomain(t *testing.T) {
	for _, tt := range []struct {
		s    config.DurationSetting
		want time.Duration
	}{
		{config.DefaultLifetime, approvals.DefaultLifetime}, {config.MaxLifetime, approvals.DefaultMaxLife},
		{config.RequestTTL, approvals.DefaultTTL}, {config.RemindAfter, approvals.DefaultRemindAfter},
		{config.WatchInterval, approvals.DefaultWatchInterval},
		{config.OnboardingNotice, approvals.DefaultOnboardingNotice},
	} {
		if got := mustParse(t, tt.s.Default); got != tt.want {
			t.Errorf("%s defaults to %s (%v); approvals says %v", tt.s.Name, tt.s.Default, got, tt.want)
		}
	}
}

// TestREADMEDocumentsEveryDuration: the configuration table gives each duration variable's
// default and range exactly as tapbot's messages say them.
func TestREADMEDocumentsEveryDuration(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Durations {
		row := ""
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "| `"+s.Name+"` |") {
				row = line
			}
		}
		if row == "" {
			t.Errorf("README.md has no table row for %s", s.Name)
			continue
		}
		for _, want := range []string{"default `" + s.Default + "`", s.Range()} {
			if !strings.Contains(row, want) {
				t.Errorf("README.md's row for %s does not say %q:\n%s", s.Name, want, row)
			}
		}
	}
}
