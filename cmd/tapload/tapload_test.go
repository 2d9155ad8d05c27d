package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// raceBuildFlags is set to -race by race_test.go when this test runs under the race detector:
// the bot is then built from the race-instrumented packages `go test -race ./...` has already
// compiled, instead of compiling the Graph SDK a second time.
var raceBuildFlags []string

// TestMain lets the test binary be the floor client, as the tapload binary is: run re-executes
// its own executable with floorEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(floorEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runFloorClient(ctx)
		stop()
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestShortLoad is CI's smoke run of the load command: it must complete against the real bot,
// the fakes and a real redis-server, and report every figure. It asserts no timing: CI machines
// are too noisy for that, and BENCHMARKS.md holds the published numbers.
func TestShortLoad(t *testing.T) {
	o := shortOptions()
	o.BuildFlags = raceBuildFlags
	o.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()

	rep, err := run(ctx, o)
	if err != nil {
		t.Fatalf("load run failed: %v", err)
	}
	t.Logf("report:\n%s", rep.table())

	present := map[string]bool{
		"floor acks":                  rep.Ack.Floor.N == o.Commands && rep.Ack.Floor.P50ms > 0 && rep.Ack.Floor.P99ms > 0,
		"bot acks":                    rep.Ack.Bot.N == o.Commands && rep.Ack.Bot.P50ms > 0 && rep.Ack.Bot.P99ms > 0,
		"idle bot acks":               rep.Ack.BotIdleHelp.N == o.Commands && rep.Ack.BotIdleHelp.P99ms > 0,
		"ack ratios":                  rep.Ack.RatioP50 > 0 && rep.Ack.RatioP99 > 0,
		"requests posted":             rep.Ack.AllRequestsPostedSec > 0,
		"every Reveal DM":             rep.Issuance.Delivered == o.Issuances && rep.Issuance.ClickToDM.N == o.Issuances,
		"issuance time":               rep.Issuance.AllDMsSec > 0 && rep.Issuance.PassesPerSec > 0 && rep.Issuance.ClickToDM.P99ms > 0,
		"one create per approval":     rep.Issuance.GraphCreateCalls == o.Issuances,
		"Graph in flight":             rep.Issuance.MaxInFlightCreate > 0 && rep.Issuance.MaxInFlightGraph > 0,
		"Redis commands":              rep.Redis.Total > 0 && rep.Redis.MonitorTotal > 0 && len(rep.Redis.ByCommand) > 0,
		"Redis commands by phase":     len(rep.Redis.ByPhase) == len(lifecyclePhases),
		"idle memory":                 rep.Memory.Idle.RSSBytes > 0 && rep.Memory.Idle.PeakBytes > 0,
		"memory after issuance":       rep.Memory.AfterIssuance.RSSBytes > 0 && rep.Memory.AfterIssuance.PeakBytes > 0,
		"phase and lifetime peaks":    rep.Memory.AckPeakBytes > 0 && rep.Memory.PeakBytes > 0,
		"Go memory from /metrics":     rep.Memory.IdleGo.SysBytes > 0 && rep.Memory.AfterGo.SysBytes > 0,
		"machine":                     rep.Machine.CPUs > 0 && rep.Machine.GoVersion != "" && rep.Machine.RedisVersion != "unknown",
		"every target judged":         len(rep.Targets) == 5,
		"lifecycle phases all seen":   rep.Redis.ByPhase["request"] > 0 && rep.Redis.ByPhase["approve+issue"] > 0 && rep.Redis.ByPhase["reveal"] > 0,
		"attempts within the bound":   rep.Redis.Attempts >= 1 && rep.Redis.Attempts <= maxLifecycleAttempts,
		"load settings in the report": rep.Load.Commands == o.Commands && rep.Load.GraphConcurrency == defaultGraphConcurrency,
	}
	table := rep.table()
	for _, tg := range rep.Targets {
		present["the table's line for "+tg.Name] = strings.Contains(table, tg.Name)
	}
	for name, ok := range present {
		if !ok {
			t.Errorf("report lacks %s", name)
		}
	}
	if v := rep.Violations; v.Slack+v.Graph > 0 {
		t.Logf("protocol violations (reported, not failed on): %v", v.First)
	}
}

func TestParseMonitor(t *testing.T) {
	tests := []struct {
		in   string
		want monitorLine
	}{
		{`1700000000.123456 [0 127.0.0.1:5000] "SET" "{tapbot}:key:envelope:1" "1" "PX" "3600000" "NX"`,
			monitorLine{client: "127.0.0.1:5000", args: []string{"set", "{tapbot}:key:envelope:1", "1", "PX", "3600000", "NX"}}},
		{`1700000000.123456 [0 lua] "SADD" "{tapbot}:open" "AB\"C"`,
			monitorLine{client: "lua", args: []string{"sadd", "{tapbot}:open", `AB"C`}}},
		{`1700000000.123456 [0 127.0.0.1:5001] "SET" "k" "\x01\xff"`,
			monitorLine{client: "127.0.0.1:5001", args: []string{"set", "k", "\x01\xff"}}},
	}
	for _, tt := range tests {
		got, ok := parseMonitor(tt.in)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseMonitor(%q) = %+v, %v; want %+v", tt.in, got, ok, tt.want)
		}
	}
}

// TestAttribute checks the accounting of one lifecycle window: tapload's own commands and the
// heartbeat are subtracted from commandstats, Lua's inner commands are counted, and a sweep
// marks the window for a retry.
func TestAttribute(t *testing.T) {
	self := "127.0.0.1:9"
	bot := "127.0.0.1:10"
	lines := []monitorLine{
		{self, []string{"config", "resetstat"}},
		{self, []string{"echo", phaseMarker + "request"}},
		{bot, []string{"set", "{tapbot}:key:envelope:e1", "1"}},
		{bot, []string{"evalsha", "abc", "2"}},
		{"lua", []string{"set", "{tapbot}:req:1"}},
		{"lua", []string{"sadd", "{tapbot}:open", "1"}},
		{bot, []string{"set", "{tapbot}:key:replica:r1", "1"}},
		{self, []string{"echo", phaseMarker + "reveal"}},
		{bot, []string{"getdel", "{tapbot}:pass:1"}},
		{self, []string{"echo", phaseMarker + "end"}},
	}
	stats := map[string]int{"config|resetstat": 1, "echo": 3, "set": 3, "evalsha": 1, "sadd": 1, "getdel": 1}
	got := attribute(stats, lines, self, 3)
	if got.Total != 5 || got.MonitorTotal != 5 || got.InsideScripts != 2 || got.TimerExcluded != 1 || got.SweepInWindow {
		t.Errorf("attribute = %+v; want 5 commands, 2 inside scripts, 1 heartbeat excluded, no sweep", got)
	}
	if got.ByPhase["request"] != 4 || got.ByPhase["reveal"] != 1 {
		t.Errorf("by phase = %v", got.ByPhase)
	}
	if want := map[string]int{"set": 2, "evalsha": 1, "sadd": 1, "getdel": 1}; !reflect.DeepEqual(got.ByCommand, want) {
		t.Errorf("by command = %v, want %v", got.ByCommand, want)
	}
	lines = append(lines[:2], monitorLine{bot, []string{"set", "{tapbot}:key:sweep-turn", "1", "NX"}}, lines[9])
	if got := attribute(map[string]int{"set": 1}, lines, self, 2); !got.SweepInWindow {
		t.Error("a sweep in the window was not noticed")
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := summarize(ds)
	if l.P50ms != 500 || l.P99ms != 990 || l.MaxMs != 1000 || l.N != 1000 {
		t.Errorf("summarize = %+v, want p50 500 ms, p99 990 ms, max 1000 ms", l)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
