package main

import (
	"context"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/slackfake"
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

// TestShortBurst is CI's smoke run of the burst mode: a small burst against Slack's published
// limits (speed 1) with tapbot pacing its calls. It asserts what the people in it would notice:
// every request reaches the approvers once, gets one pass and one Reveal DM, none fails or is
// cancelled, and no requester is warned or told something went wrong. Like TestShortLoad it
// asserts no timing: the ratio to the floor is reported, not judged.
func TestShortBurst(t *testing.T) {
	o := shortBurstOptions()
	o.BuildFlags = raceBuildFlags
	o.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()

	rep, err := runBurst(ctx, o)
	if err != nil {
		t.Fatalf("burst failed: %v", err)
	}
	table := rep.table()
	t.Logf("report:\n%s", table)

	n, d := o.Burst.Requests, rep.Delivery
	if d.Requests != n || d.Delivered != n {
		t.Errorf("%d of %d requests delivered; problems: %v", d.Delivered, n, d.FirstProblems)
	}
	if d.ApprovalMessages != n || d.Passes != n || d.RevealDMs != n || rep.Graph.CreatePassCalls != n {
		t.Errorf("%d requests made %d approval messages, %d passes (%d Graph creates) and %d Reveal DMs; want one each",
			n, d.ApprovalMessages, d.Passes, rep.Graph.CreatePassCalls, d.RevealDMs)
	}
	if d.Failed+d.Cancelled > 0 {
		t.Errorf("%d requests failed and %d were cancelled", d.Failed, d.Cancelled)
	}
	if r := rep.Requesters; r.Warned > 0 || r.Managers != o.Burst.Managers {
		t.Errorf("%d of %d requesters were warned: %v", r.Warned, r.Managers, r.FirstWarnings)
	}

	present := map[string]bool{
		"the setup":                   rep.Setup.SlackSpeed == 1 && strings.HasPrefix(rep.Setup.TapbotPacing, "on") && rep.Setup.Requests == n,
		"the time to the last DM":     rep.Timing.LastRevealDMSec > 0 && rep.Timing.ClickToRevealDM.N == n,
		"the floor and its bucket":    rep.Floor.Bucket != "" && len(rep.Floor.Buckets) > 0,
		"calls per lifecycle":         rep.Slack.PerLifecycle["chat.postMessage"] > 0 && rep.Slack.WebAPIPerLifecycle > 0,
		"response_url posts":          rep.Slack.ResponseURLPerLifecycle > 0,
		"every target judged":         len(rep.Targets) == 3,
		"the setup in the table":      strings.Contains(table, "published") && strings.Contains(table, "pacing on"),
		"the ratio in the table":      strings.Contains(table, "last Reveal DM / floor"),
		"429s in the table":           strings.Contains(table, "429s from Slack"),
		"per-lifecycle in the table":  strings.Contains(table, "Slack calls per lifecycle"),
		"the busiest bucket in table": strings.Contains(table, rep.Floor.Bucket),
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

// TestBucketModel checks that the floor draws each call from the buckets the fake does: a DM
// by user ID and by its channel share one, chat.postMessage also draws from the workspace's, a
// method not listed draws from Default, and response_url from none.
func TestBucketModel(t *testing.T) {
	l := slackfake.PublishedRateLimits()
	m := &bucketModel{limits: l, users: map[string]bool{"U1": true}, dmOwner: map[string]string{"D1": "U1"}}
	keys := func(method, channel string) []string {
		var out []string
		for _, b := range m.bucketsOf(slackfake.Call{Method: method, Params: map[string]string{"channel": channel}}) {
			out = append(out, b.key)
		}
		return out
	}
	if a, b := keys("chat.postMessage", "U1"), keys("chat.postMessage", "D1"); !reflect.DeepEqual(a, b) ||
		!reflect.DeepEqual(a, []string{"postMessage:channel:dm:U1", "postMessage:workspace"}) {
		t.Errorf("a DM by user ID draws from %v, by its channel from %v", a, b)
	}
	if got := keys("chat.postMessage", "CAPPROVALS"); !reflect.DeepEqual(got, []string{"postMessage:channel:CAPPROVALS", "postMessage:workspace"}) {
		t.Errorf("a channel post draws from %v", got)
	}
	if got := m.bucketsOf(slackfake.Call{Method: "chat.scheduleMessage"}); len(got) != 1 || got[0].Bucket != l.Default {
		t.Errorf("an unlisted method draws from %v, want Default %v", got, l.Default)
	}
	if got := m.bucketsOf(slackfake.Call{Method: "response_url"}); len(got) != 0 {
		t.Errorf("response_url draws from %v", got)
	}

	// Tier 3 (burst 10, one per 1.2 s): 12 calls at once empty it and wait for two refills.
	at := time.Unix(1000, 0)
	var calls []slackfake.Call
	for range 12 {
		calls = append(calls, slackfake.Call{Method: "chat.update", At: at})
	}
	b := m.bucket("method:chat.update")
	if got := m.floor(b, 10, 12); got != 2400*time.Millisecond {
		t.Errorf("floor of 12 calls on a full Tier 3 bucket = %v, want 2.4s", got)
	}
	if got := m.floor(b, 10, 7); got != 0 {
		t.Errorf("floor of 7 calls on a full Tier 3 bucket = %v, want 0", got)
	}
	lv := m.levels(calls[:10], at.Add(600*time.Millisecond))
	if got := lv["method:chat.update"]; math.Abs(got-0.5) > 1e-9 {
		t.Errorf("after 10 calls and 0.6 s a Tier 3 bucket holds %v tokens, want 0.5", got)
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
