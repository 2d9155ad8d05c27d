package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLifecycleAttempts bounds how often the measured lifecycle is repeated because the bot's
// sweeper ran inside its window (every 10 s by default; a lifecycle takes about a second).
const maxLifecycleAttempts = 4

// phaseMarker prefixes the ECHO tapload sends between phases; MONITOR shows it in order with the
// bot's commands, so each command is attributed to its phase without comparing clocks.
const phaseMarker = "tapload-phase:"

// lifecyclePhases are the steps of one request, in order. Approving and issuing are one click:
// the Approve handler creates the pass, stores it sealed and sends the Reveal DM.
var lifecyclePhases = []string{"request", "approve+issue", "reveal"}

// measureLifecycle counts the Redis commands of one request from /tap to the revealed pass.
//
// CONFIG RESETSTAT zeroes INFO commandstats before it and INFO commandstats is read after, with
// nothing else running. The bot's own timers still run during the window: a heartbeat (a SET of
// its replica key every HeartbeatTTL/3, 5 s by default) and a sweep (every 10 s). MONITOR, open
// for the window, shows which commands those were: heartbeat commands name the replica key and
// are subtracted exactly; a window the sweeper entered (it names the sweep-turn key) is thrown
// away and the lifecycle repeated with a fresh request. tapload's own commands (the RESETSTAT
// and the ECHO markers) are subtracted too. The MONITOR count of what is left is reported next
// to the commandstats figure as a cross-check.
func (w *world) measureLifecycle(ctx context.Context, rep *report) error {
	// One unmeasured lifecycle first: it loads the Lua scripts (EVALSHA answers NOSCRIPT once
	// per server) and warms the bot's connection pool, which no later request pays for.
	if err := w.lifecycle(ctx, cycleID(0), func(string) error { return nil }); err != nil {
		return fmt.Errorf("warm-up lifecycle: %w", err)
	}
	for attempt := 1; attempt <= maxLifecycleAttempts; attempt++ {
		res, err := w.countLifecycle(ctx, cycleID(attempt))
		if err != nil {
			return err
		}
		res.Attempts = attempt
		rep.Redis = res
		if !res.SweepInWindow {
			return nil
		}
		w.log.Info("the sweeper ran during the measured lifecycle; measuring again", "attempt", attempt)
	}
	return nil
}

func (w *world) countLifecycle(ctx context.Context, user string) (redisReport, error) {
	mon, err := startMonitor(ctx, w.redis.addr)
	if err != nil {
		return redisReport{}, err
	}
	defer mon.stop()
	ctl, err := dialRedis(ctx, w.redis.addr)
	if err != nil {
		return redisReport{}, err
	}
	defer ctl.close()
	if _, err := ctl.do("CONFIG", "RESETSTAT"); err != nil {
		return redisReport{}, fmt.Errorf("CONFIG RESETSTAT: %w", err)
	}
	echoes := 0
	mark := func(phase string) error {
		echoes++
		if _, err := ctl.do("ECHO", phaseMarker+phase); err != nil {
			return fmt.Errorf("mark phase: %w", err)
		}
		return nil
	}
	if err := w.lifecycle(ctx, user, mark); err != nil {
		return redisReport{}, fmt.Errorf("measured lifecycle: %w", err)
	}
	if err := mark("end"); err != nil {
		return redisReport{}, err
	}
	info, err := ctl.do("INFO", "commandstats")
	if err != nil {
		return redisReport{}, fmt.Errorf("INFO commandstats: %w", err)
	}
	stats, err := commandStats(fmt.Sprint(info))
	if err != nil {
		return redisReport{}, err
	}
	// MONITOR is asynchronous: wait until it has shown the end marker.
	var lines []monitorLine
	self := ctl.localAddr()
	if err := w.waitFor(ctx, "MONITOR to catch up", 5*time.Second, 10*time.Millisecond, func() bool {
		lines = mon.lines()
		for _, l := range lines {
			if l.client == self && len(l.args) == 2 && l.args[0] == "echo" && l.args[1] == phaseMarker+"end" {
				return true
			}
		}
		return false
	}); err != nil {
		return redisReport{}, err
	}
	if w.o.KeepDir {
		w.writeMonitor(lines, self, user)
	}
	return attribute(stats, lines, self, echoes), nil
}

// writeMonitor keeps the window's commands, arguments cut short (request records and sealed
// passes are no one's business in a log), next to the bot's log, for reading which call sent
// what.
func (w *world) writeMonitor(lines []monitorLine, self, user string) {
	var b strings.Builder
	for _, l := range lines {
		src := "tapbot"
		switch l.client {
		case self:
			src = "tapload"
		case "lua":
			src = "  lua"
		}
		args := make([]string, len(l.args))
		for i, a := range l.args {
			if !utf8.ValidString(a) || strings.ContainsFunc(a, func(r rune) bool { return r < ' ' }) {
				a = fmt.Sprintf("<%d bytes>", len(a))
			}
			if len(a) > 48 {
				a = a[:48] + "…"
			}
			args[i] = strconv.Quote(a)
		}
		fmt.Fprintf(&b, "%-7s %s\n", src, strings.Join(args, " "))
	}
	path := filepath.Join(w.dir, "lifecycle-"+user+".monitor")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		w.log.Info("MONITOR lines not kept", "err", err)
	}
}

// attribute turns commandstats and the MONITOR lines of one window into the report.
func attribute(stats map[string]int, lines []monitorLine, self string, echoes int) redisReport {
	res := redisReport{ByCommand: map[string]int{}, ByPhase: map[string]int{}, TimerByCommand: map[string]int{}}
	phase := "before"
	for _, l := range lines {
		if l.client == self {
			if l.args[0] == "echo" && len(l.args) == 2 {
				if p, ok := strings.CutPrefix(l.args[1], phaseMarker); ok {
					phase = p
				}
			}
			continue
		}
		if phase == "before" || phase == "end" {
			continue
		}
		if timer := timerCommand(l.args); timer != "" {
			res.TimerByCommand[commandName(l.args)]++
			res.TimerExcluded++
			if timer == "sweep" {
				res.SweepInWindow = true
			}
			continue
		}
		res.MonitorTotal++
		res.ByPhase[phase]++
		if l.client == "lua" {
			res.InsideScripts++
		}
	}
	for name, n := range stats {
		switch name {
		case "config|resetstat":
			n--
		case "echo":
			n -= echoes
		}
		n -= res.TimerByCommand[name]
		if n > 0 {
			res.ByCommand[name] = n
			res.Total += n
		}
	}
	return res
}

// timerCommand says whether a command belongs to the bot's heartbeat or sweeper rather than to
// the request: they name the replica key or the sweep-turn key.
func timerCommand(args []string) string {
	for _, a := range args[1:] {
		switch {
		case strings.Contains(a, "sweep-turn"):
			return "sweep"
		case strings.Contains(a, "replica:"):
			return "heartbeat"
		}
	}
	return ""
}

// commandName is the commandstats name of a command: subcommands of container commands are
// counted as "config|resetstat", "client|setinfo" and so on.
func commandName(args []string) string {
	switch args[0] {
	case "client", "config", "command", "script", "function", "object", "memory", "acl", "cluster", "xinfo", "latency", "slowlog", "module":
		if len(args) > 1 {
			return args[0] + "|" + strings.ToLower(args[1])
		}
	}
	return args[0]
}

// lifecycle runs one request to the end: /tap, Approve, Reveal, each step waited for until the
// bot's last Slack call of it, so mark separates the steps cleanly.
func (w *world) lifecycle(ctx context.Context, user string, mark func(phase string) error) error {
	step := func(phase string, do func() error) error {
		if err := mark(phase); err != nil {
			return err
		}
		if err := do(); err != nil {
			return fmt.Errorf("%s: %w", phase, err)
		}
		return w.settle(ctx, 300*time.Millisecond, 30*time.Second)
	}
	var pending pendingApproval
	err := step(lifecyclePhases[0], func() error {
		before := w.slack.Calls("response_url")
		// UMANAGER asks for every lifecycle: at most 1+maxLifecycleAttempts requests, within
		// the default hourly limit of 10.
		if _, err := w.slack.SlashCommand(ctx, manager, general, "/tap", "<@"+user+"> 1h once lifecycle measurement"); err != nil {
			return err
		}
		return w.waitFor(ctx, "the approval message", 30*time.Second, 5*time.Millisecond, func() bool {
			p, ok := w.pendingApprovals()[user]
			pending = p
			return ok && w.slack.Calls("response_url") > before
		})
	})
	if err != nil {
		return err
	}
	err = step(lifecyclePhases[1], func() error {
		if _, err := w.slack.ClickButton(ctx, approver, pending.ref, pending.approve.ActionID, pending.approve.Value); err != nil {
			return err
		}
		return w.waitFor(ctx, "the Reveal DM", 30*time.Second, 5*time.Millisecond, func() bool {
			_, _, ok := w.revealDM(user)
			return ok
		})
	})
	if err != nil {
		return err
	}
	return step(lifecyclePhases[2], func() error {
		m, b, ok := w.revealDM(user)
		if !ok {
			return fmt.Errorf("the Reveal DM to %s is gone", user)
		}
		if _, err := w.slack.ClickButton(ctx, user, m.Ref(), b.ActionID, b.Value); err != nil {
			return err
		}
		passes := w.graph.Passes(w.entraID[user])
		if len(passes) == 0 {
			return fmt.Errorf("no pass was created for %s", user)
		}
		code := passes[len(passes)-1].Code
		return w.waitFor(ctx, "the pass on screen", 30*time.Second, 5*time.Millisecond, func() bool {
			for _, v := range w.slack.Views(user) {
				if strings.Contains(v.PlainText(), code) {
					return true
				}
			}
			return false
		})
	})
}

// sortedKeys lists a map's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
