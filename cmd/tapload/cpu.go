package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// cpuMeter tells how much of the machine's CPU went to processes that are not part of the run
// (tapload, its children, tapbot and redis-server). The machine has few CPUs and the fakes, the
// driver, Redis and the bot share them, so another build or test running at the same time moves
// every latency figure: the report says how busy the rest of the machine was, so a noisy run is
// recognised as one.
type cpuMeter struct {
	pids        []int
	busy, total int64
	ours        int64
}

func newCPUMeter(pids ...int) (*cpuMeter, error) {
	m := &cpuMeter{pids: pids}
	var err error
	if m.busy, m.total, err = machineTicks(); err != nil {
		return nil, err
	}
	if m.ours, err = m.ourTicks(); err != nil {
		return nil, err
	}
	return m, nil
}

// foreignPercent is the share of all CPUs' time since newCPUMeter that other processes used.
func (m *cpuMeter) foreignPercent() (float64, error) {
	busy, total, err := machineTicks()
	if err != nil {
		return 0, err
	}
	ours, err := m.ourTicks()
	if err != nil {
		return 0, err
	}
	if total == m.total {
		return 0, nil
	}
	p := float64((busy-m.busy)-(ours-m.ours)) / float64(total-m.total) * 100
	return math.Round(max(0, p)*10) / 10, nil
}

// ourTicks is tapload's CPU time, its waited-for children's (the floor client) and that of the
// processes still running for it (tapbot, redis-server).
func (m *cpuMeter) ourTicks() (int64, error) {
	self, err := procTicks("self", true)
	if err != nil {
		return 0, err
	}
	for _, pid := range m.pids {
		t, err := procTicks(strconv.Itoa(pid), false)
		if err != nil {
			return 0, err
		}
		self += t
	}
	return self, nil
}

// procTicks reads utime+stime (and cutime+cstime with children) from /proc/<pid>/stat.
func procTicks(pid string, children bool) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name, in parentheses, may hold spaces: count fields after its end.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
	last := 12
	if children {
		last = 14
	}
	if len(fields) <= last {
		return 0, fmt.Errorf("/proc/%s/stat: too few fields", pid)
	}
	var sum int64
	for _, f := range fields[11 : last+1] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
		}
		sum += n
	}
	return sum, nil
}

// machineTicks reads busy and total CPU time of all CPUs from /proc/stat.
func machineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest time is already in user).
	for i, f := range fields[1:9] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total, nil
}
