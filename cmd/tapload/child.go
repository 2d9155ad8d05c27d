package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tapbotPackage is built when no -tapbot binary is given. The import path works from any
// directory inside the module, so tapload need not run from the repository root.
const tapbotPackage = "github.com/tapbot/tapbot/cmd/tapbot"

// buildTapbot compiles cmd/tapbot into dir. extraFlags lets the CI smoke test build with -race,
// which reuses the packages `go test -race ./...` already compiled instead of building the Graph
// SDK a second time.
func buildTapbot(ctx context.Context, dir string, extraFlags []string) (string, error) {
	out := filepath.Join(dir, "tapbot")
	args := append([]string{"build", "-o", out}, extraFlags...)
	args = append(args, tapbotPackage)
	cmd := exec.CommandContext(ctx, "go", args...)
	var buf tailBuffer
	buf.max = 16 << 10
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", tapbotPackage, err, buf.String())
	}
	return out, nil
}

// dieWithParent makes the kernel kill a child when tapload dies, even by SIGKILL, so an
// interrupted run leaves no bot or redis-server behind.
func dieWithParent() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// child is a process tapload started: the bot, or the floor client.
type child struct {
	name string
	cmd  *exec.Cmd
	logs *tailBuffer
	file *os.File
	done chan struct{}
	err  error
}

// startChild runs path with exactly env (no inherited variables beyond PATH and HOME), so the
// bot is configured the way a user would configure it and nothing from tapload's own
// environment leaks in. Its stderr goes to logPath and a short tail is kept for errors.
func startChild(name, path string, args, env []string, dir, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log file: %w", name, err)
	}
	c := &child{name: name, logs: &tailBuffer{max: 16 << 10}, file: f, done: make(chan struct{})}
	c.cmd = exec.Command(path, args...)
	c.cmd.Dir = dir
	c.cmd.SysProcAttr = dieWithParent()
	c.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	w := io.MultiWriter(f, c.logs)
	c.cmd.Stdout, c.cmd.Stderr = w, w
	if err := c.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited returns an error when the process is gone, nil while it runs.
func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v); last output:\n%s", c.name, c.err, c.logs.String())
	default:
		return nil
	}
}

// stop sends SIGTERM, as an orchestrator would, and waits up to grace before killing. It reports
// an error when the process had to be killed or exited with a failure.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return c.exitError()
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.exitError()
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM and was killed", c.name, grace)
	}
}

func (c *child) exitError() error {
	if c.err != nil {
		return fmt.Errorf("%s exited with %w; last output:\n%s", c.name, c.err, c.logs.String())
	}
	return nil
}

// memory is a process's resident set as the kernel counts it.
type memory struct {
	RSSBytes  int64 `json:"rss_bytes"`  // VmRSS: resident now
	PeakBytes int64 `json:"peak_bytes"` // VmHWM: the most it was ever resident
	// AnonBytes and FileBytes split RSSBytes: anonymous memory (Go heap, stacks, runtime) and
	// file-backed pages (the executable's code and data as far as they were touched).
	AnonBytes int64 `json:"rss_anon_bytes"`
	FileBytes int64 `json:"rss_file_bytes"`
}

// readMemory reads VmRSS and VmHWM from /proc/<pid>/status. Reading them from outside is what
// makes the figure honest: the Go runtime's own statistics leave out the binary's mapped text and
// anything not on the Go heap.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		var field *int64
		switch name {
		case "VmRSS":
			field = &m.RSSBytes
		case "VmHWM":
			field = &m.PeakBytes
		case "RssAnon":
			field = &m.AnonBytes
		case "RssFile":
			field = &m.FileBytes
		}
		if !ok || field == nil {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return memory{}, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, name, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
		}
		*field = kb << 10
	}
	if err := sc.Err(); err != nil {
		return memory{}, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	if m.RSSBytes == 0 || m.PeakBytes == 0 {
		return memory{}, fmt.Errorf("/proc/%d/status has no VmRSS/VmHWM", pid)
	}
	return m, nil
}

// resetPeak starts VmHWM afresh from the current RSS (writing 5 to clear_refs, Linux 4.0+), so the
// peak of each phase can be read on its own instead of only the process's lifetime peak.
func resetPeak(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS of pid %d: %w", pid, err)
	}
	return nil
}

// httpGet fetches a URL on the bot's health server with a short timeout.
func httpGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, string(b), nil
}

// metricValue returns the value of an unlabelled Prometheus sample from a /metrics body.
func metricValue(body, name string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}
