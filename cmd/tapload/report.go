package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Targets from the issue.
const (
	targetAckRatioP99      = 1.2
	targetIssuanceSec      = 5.0
	targetRedisPerRequest  = 12
	targetPeakRSSAfterByte = 40 << 20
)

// report is everything one run measured. Fields are plain numbers so -json output can be
// compared between runs by a script.
type report struct {
	Mode       string         `json:"mode"`
	Machine    machine        `json:"machine"`
	Load       loadSettings   `json:"load"`
	Ack        ackReport      `json:"ack"`
	Issuance   issuanceReport `json:"issuance"`
	Redis      redisReport    `json:"redis_per_lifecycle"`
	Memory     memoryReport   `json:"memory"`
	Violations violations     `json:"violations"`
	Targets    []target       `json:"targets"`
}

type machine struct {
	CPUs         int    `json:"cpus"`
	CPUModel     string `json:"cpu_model"`
	MemoryBytes  int64  `json:"memory_bytes"`
	Kernel       string `json:"kernel"`
	GoVersion    string `json:"go_version"`
	RedisVersion string `json:"redis_version"`
	// ForeignCPUPercent is how much of all CPUs' time other processes used during the
	// measurements; a few percent is a quiet machine.
	ForeignCPUPercent float64 `json:"foreign_cpu_percent"`
}

type loadSettings struct {
	Commands         int     `json:"commands"`
	Concurrency      int     `json:"concurrency"`
	Issuances        int     `json:"issuances"`
	ClickConcurrency int     `json:"click_concurrency"`
	GraphLatencyMs   float64 `json:"graph_latency_ms"`
	GraphConcurrency int     `json:"graph_concurrency"`
	// SlackRateLimits and TapbotPacing say how Slack's limits were applied: these runs measure
	// tapbot itself, so the fake throttles nothing and tapbot does not pace (-burst runs
	// against Slack's published limits instead).
	SlackRateLimits string `json:"slack_rate_limits"`
	TapbotPacing    string `json:"tapbot_slack_pacing"`
}

type ackReport struct {
	Floor latency `json:"floor"`
	Bot   latency `json:"bot"`
	// BotIdleHelp is /tap help on the idle bot: the ack path without the work requests queue.
	BotIdleHelp     latency `json:"bot_idle_help"`
	RatioP50        float64 `json:"ratio_p50"`
	RatioP99        float64 `json:"ratio_p99"`
	BotOverDeadline int     `json:"bot_acks_over_3s"`
	// AllRequestsPostedSec is from the first measured command until every request had reached
	// the approvers, the bot's work after the acks included.
	AllRequestsPostedSec float64 `json:"all_requests_posted_sec"`
}

type issuanceReport struct {
	Delivered         int     `json:"delivered"`
	AllDMsSec         float64 `json:"all_dms_sec"`
	PassesPerSec      float64 `json:"passes_per_sec"`
	ClickToDM         latency `json:"click_to_dm"`
	GraphCreateCalls  int     `json:"graph_create_calls"`
	MaxInFlightCreate int     `json:"max_in_flight_create"`
	MaxInFlightGraph  int     `json:"max_in_flight_graph"`
}

type redisReport struct {
	// Total is INFO commandstats' calls summed over the lifecycle, commands run inside Lua
	// scripts included (redis counts each), heartbeat and tapload's own commands excluded.
	Total          int            `json:"total"`
	ByCommand      map[string]int `json:"by_command"`
	ByPhase        map[string]int `json:"by_phase"`
	InsideScripts  int            `json:"inside_scripts"`
	MonitorTotal   int            `json:"monitor_total"`
	TimerExcluded  int            `json:"timer_commands_excluded"`
	TimerByCommand map[string]int `json:"-"`
	SweepInWindow  bool           `json:"sweep_in_window"`
	Attempts       int            `json:"attempts"`
}

// memoryReport is the bot's resident memory. VmHWM is reset between phases, so each peak
// belongs to one phase: Idle.PeakBytes is start-up, AckPeakBytes the ack run and the work it
// queued, AfterIssuance.PeakBytes the issuance run. PeakBytes is the largest of them: the
// process's lifetime peak.
type memoryReport struct {
	Idle          memory   `json:"idle"`
	IdleGo        goMemory `json:"idle_go"`
	AckPeakBytes  int64    `json:"ack_phase_peak_bytes"`
	AfterIssuance memory   `json:"after_issuance"`
	AfterGo       goMemory `json:"after_issuance_go"`
	PeakBytes     int64    `json:"lifetime_peak_bytes"`
}

// goMemory is the bot's own /metrics view, to tell the Go heap from the rest of the RSS.
type goMemory struct {
	HeapInuseBytes  int64 `json:"heap_inuse_bytes"`
	StackInuseBytes int64 `json:"stack_inuse_bytes"`
	SysBytes        int64 `json:"sys_bytes"`
	Goroutines      int   `json:"goroutines"`
}

type violations struct {
	Slack int      `json:"slack"`
	Graph int      `json:"graph"`
	First []string `json:"first,omitempty"`
}

type target struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func newReport(o options) report {
	mode := "full"
	if o.Short {
		mode = "short"
	}
	gc := o.GraphConcurrency
	if gc == 0 {
		gc = defaultGraphConcurrency
	}
	return report{
		Mode:    mode,
		Machine: describeMachine(),
		Load: loadSettings{Commands: o.Commands, Concurrency: o.Concurrency, Issuances: o.Issuances,
			ClickConcurrency: o.ClickConcurrency, GraphLatencyMs: ms(o.GraphLatency), GraphConcurrency: gc,
			SlackRateLimits: "off", TapbotPacing: "off (TAP_SLACK_PACING=off)"},
	}
}

func violationsOf(slack, graph []string) violations {
	v := violations{Slack: len(slack), Graph: len(graph)}
	for _, s := range append(append([]string(nil), slack...), graph...) {
		if len(v.First) == 5 {
			break
		}
		v.First = append(v.First, s)
	}
	return v
}

// judge compares the figures with the targets. Targets are judged at full scale only in
// spirit: a -short run still reports met or missed, but its numbers are not the published ones.
func (r *report) judge() {
	is := r.Issuance
	r.Targets = []target{
		{"ack p99 / floor p99", fmt.Sprintf("<= %.1f", targetAckRatioP99),
			fmt.Sprintf("%.2f (%.2f ms / %.2f ms)", r.Ack.RatioP99, r.Ack.Bot.P99ms, r.Ack.Floor.P99ms),
			r.Ack.RatioP99 > 0 && r.Ack.RatioP99 <= targetAckRatioP99},
		{fmt.Sprintf("all %d Reveal DMs after the clicks", r.Load.Issuances), fmt.Sprintf("<= %.0f s", targetIssuanceSec),
			fmt.Sprintf("%.2f s", is.AllDMsSec), is.Delivered == r.Load.Issuances && is.AllDMsSec <= targetIssuanceSec},
		{"Graph requests in flight", fmt.Sprintf("<= %d (TAP_GRAPH_CONCURRENCY)", r.Load.GraphConcurrency),
			fmt.Sprintf("%d (create %d)", is.MaxInFlightGraph, is.MaxInFlightCreate),
			is.MaxInFlightGraph > 0 && is.MaxInFlightGraph <= r.Load.GraphConcurrency},
		{"Redis commands per lifecycle", fmt.Sprintf("<= %d", targetRedisPerRequest),
			strconv.Itoa(r.Redis.Total), r.Redis.Total > 0 && r.Redis.Total <= targetRedisPerRequest},
		{"peak RSS after the issuance run (lifetime)", fmt.Sprintf("< %d MB", targetPeakRSSAfterByte>>20),
			fmt.Sprintf("%s (ack run %s, issuance run %s)", mb(r.Memory.PeakBytes), mb(r.Memory.AckPeakBytes), mb(r.Memory.AfterIssuance.PeakBytes)),
			r.Memory.PeakBytes > 0 && r.Memory.PeakBytes < targetPeakRSSAfterByte},
	}
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// table renders the report for a terminal and for pasting into BENCHMARKS.md.
func (r *report) table() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "tapload (%s): %d CPUs, %s, %s RAM, Linux %s, %s, redis %s\n", r.Mode, m.CPUs, m.CPUModel,
		mb(m.MemoryBytes), m.Kernel, m.GoVersion, m.RedisVersion)
	fmt.Fprintf(&b, "other processes used %.1f%% of the CPUs during the measurements\n", m.ForeignCPUPercent)
	l, is, rr, mem := r.Load, r.Issuance, r.Redis, r.Memory
	fmt.Fprintf(&b, "Slack rate limits: %s in the fake, tapbot pacing %s: these runs measure tapbot itself (-burst measures it against Slack's published limits)\n",
		l.SlackRateLimits, l.TapbotPacing)
	section := sectionWriter(&b)
	lat := func(x latency) []any {
		return []any{fmt.Sprintf("%.2f ms", x.P50ms), fmt.Sprintf("%.2f ms", x.P99ms), fmt.Sprintf("%.2f ms", x.MaxMs)}
	}
	section(fmt.Sprintf("Ack latency: %d slash commands at concurrency %d", l.Commands, l.Concurrency), func(row func(...any)) {
		row("", "p50", "p99", "max")
		row(append([]any{"floor: bare slack-go socket mode, acks at once"}, lat(r.Ack.Floor)...)...)
		row(append([]any{"tapbot: /tap @person 1h once reason"}, lat(r.Ack.Bot)...)...)
		row(append([]any{"tapbot idle: /tap help (no work after the ack)"}, lat(r.Ack.BotIdleHelp)...)...)
		row("ratio tapbot / floor", fmt.Sprintf("%.2f", r.Ack.RatioP50), fmt.Sprintf("%.2f", r.Ack.RatioP99), "")
		row("tapbot acks over 3 s", r.Ack.BotOverDeadline, "", "")
		row("every request at the approvers after", fmt.Sprintf("%.2f s", r.Ack.AllRequestsPostedSec), "", "")
	})
	section(fmt.Sprintf("Issuance: %d approvals at once (%d clicks in flight), Graph %.0f ms per call, TAP_GRAPH_CONCURRENCY %d",
		l.Issuances, l.ClickConcurrency, l.GraphLatencyMs, l.GraphConcurrency), func(row func(...any)) {
		row("every recipient has a Reveal DM after", fmt.Sprintf("%.2f s", is.AllDMsSec), "", "")
		row("passes per second", fmt.Sprintf("%.1f", is.PassesPerSec), "", "")
		row("", "p50", "p99", "max")
		row(append([]any{"click to Reveal DM"}, lat(is.ClickToDM)...)...)
		row("Graph requests in flight at most (all / create)", fmt.Sprintf("%d / %d", is.MaxInFlightGraph, is.MaxInFlightCreate), "", "")
	})
	section("Redis commands per request lifecycle (request, approve+issue, reveal)", func(row func(...any)) {
		row("INFO commandstats calls", rr.Total)
		row("sent by tapbot / run inside Lua scripts", fmt.Sprintf("%d / %d", rr.MonitorTotal-rr.InsideScripts, rr.InsideScripts))
		row("by phase (MONITOR)", counts(rr.ByPhase, lifecyclePhases))
		row("by command (commandstats)", counts(rr.ByCommand, nil))
		row("heartbeat commands excluded / attempts", fmt.Sprintf("%d / %d", rr.TimerExcluded, rr.Attempts))
	})
	section("tapbot memory (/proc/<pid>/status)", func(row func(...any)) {
		row("idle: RSS / peak RSS since start", fmt.Sprintf("%s / %s", mb(mem.Idle.RSSBytes), mb(mem.Idle.PeakBytes)))
		row("idle RSS: anonymous / file-backed (code)", fmt.Sprintf("%s / %s", mb(mem.Idle.AnonBytes), mb(mem.Idle.FileBytes)))
		row("peak RSS during the ack run and the work it queued", mb(mem.AckPeakBytes))
		row("peak RSS during the issuance run / RSS after it", fmt.Sprintf("%s / %s", mb(mem.AfterIssuance.PeakBytes), mb(mem.AfterIssuance.RSSBytes)))
		row("RSS after it: anonymous / file-backed (code)", fmt.Sprintf("%s / %s", mb(mem.AfterIssuance.AnonBytes), mb(mem.AfterIssuance.FileBytes)))
		row("lifetime peak RSS", mb(mem.PeakBytes))
		goRow := func(when string, g goMemory) {
			row("Go heap in use / stacks / Go sys / goroutines, "+when, fmt.Sprintf("%s / %s / %s / %d",
				mb(g.HeapInuseBytes), mb(g.StackInuseBytes), mb(g.SysBytes), g.Goroutines))
		}
		goRow("idle", mem.IdleGo)
		goRow("after", mem.AfterGo)
	})
	section("Protocol", func(row func(...any)) {
		row("violations (Slack / Graph)", fmt.Sprintf("%d / %d", r.Violations.Slack, r.Violations.Graph))
		for _, v := range r.Violations.First {
			row("violation", v)
		}
	})
	section("Targets", func(row func(...any)) {
		for _, t := range r.Targets {
			verdict := "met"
			if !t.Met {
				verdict = "MISSED"
			}
			row(t.Name, t.Target, t.Measured, verdict)
		}
	})
	return b.String()
}

// counts renders a map as "a=1 b=2", in order's order first and then alphabetically.
func counts(m map[string]int, order []string) string {
	var parts []string
	done := map[string]bool{}
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		done[k] = true
	}
	for _, k := range sortedKeys(m) {
		if !done[k] {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	return strings.Join(parts, " ")
}

// describeMachine reads what BENCHMARKS.md records about the machine.
func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				if fields := strings.Fields(v); len(fields) == 2 {
					kb, _ := strconv.ParseInt(fields[0], 10, 64)
					m.MemoryBytes = kb << 10
				}
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// sectionWriter returns what writes one titled table of a report to b: a row per call, its
// cells tab-aligned.
func sectionWriter(b *strings.Builder) func(title string, rows func(row func(cells ...any))) {
	return func(title string, rows func(row func(cells ...any))) {
		fmt.Fprintf(b, "\n%s\n", title)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		rows(func(cells ...any) {
			parts := make([]string, len(cells))
			for i, c := range cells {
				parts[i] = fmt.Sprint(c)
			}
			fmt.Fprintln(tw, "  "+strings.TrimRight(strings.Join(parts, "\t"), "\t"))
		})
		_ = tw.Flush()
	}
}
