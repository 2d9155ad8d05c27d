package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pprofEnv names the address the profiling build of tapbot serves net/http/pprof on.
const pprofEnv = "TAPLOAD_PPROF_ADDR"

// pprofHook is compiled into cmd/tapbot only for -pprof runs, through `go build -overlay`: the
// bot's source stays untouched and the measured binary of a normal run carries no pprof server.
const pprofHook = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("` + pprofEnv + `"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// pprofOverlay writes the hook and the overlay that adds it to cmd/tapbot, and returns the
// go build flag that applies it.
func pprofOverlay(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", tapbotPackage).Output()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", tapbotPackage, err)
	}
	hook := filepath.Join(dir, "tapload_pprof.go")
	if err := os.WriteFile(hook, []byte(pprofHook), 0o600); err != nil {
		return "", fmt.Errorf("write pprof hook: %w", err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(strings.TrimSpace(string(out)), "zz_tapload_pprof.go"): hook},
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(path, overlay, 0o600); err != nil {
		return "", fmt.Errorf("write overlay: %w", err)
	}
	return "-overlay=" + path, nil
}

// profiler saves pprof profiles of the bot into the working directory; a nil profiler does
// nothing, so measurements call it unconditionally.
type profiler struct {
	base string // http://addr of the bot's pprof server
	dir  string
	log  interface{ Info(string, ...any) }
}

// snapshot saves the heap and goroutine profiles as they are now.
func (p *profiler) snapshot(ctx context.Context, name string) {
	if p == nil {
		return
	}
	for _, kind := range []string{"heap", "goroutine"} {
		p.save(ctx, "/debug/pprof/"+kind, fmt.Sprintf("%s-%s.pprof", name, kind), 30*time.Second)
	}
}

// cpu records a CPU profile for d in the background; wait for the returned channel.
func (p *profiler) cpu(ctx context.Context, name string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if p == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		p.save(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), name+"-cpu.pprof", d+30*time.Second)
	}()
	return done
}

func (p *profiler) save(ctx context.Context, path, file string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.log.Info("profile not taken", "path", path, "err", err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.log.Info("profile not taken", "path", path, "status", resp.StatusCode, "err", err)
		return
	}
	out := filepath.Join(p.dir, file)
	if err := os.WriteFile(out, b, 0o600); err == nil {
		p.log.Info("profile saved", "file", out)
	}
}
