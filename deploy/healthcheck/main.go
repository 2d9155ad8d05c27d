// Command healthcheck asks a running tapbot's own HTTP server for /healthz (or /readyz) and exits
// 0 when it answers 200. It exists because the image is distroless, with no shell, curl or wget
// for a Docker or Compose health check to run.
//
// Usage: healthcheck [/healthz|/readyz]. It reads TAP_HTTP_ADDR the way tapbot does (default
// :8080), so a container configured with another port needs nothing more.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// timeout stays under the health check timeouts in the Dockerfile and docker-compose.yml, so the
// probe reports its own reason instead of being killed silently.
const timeout = 4 * time.Second

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}

// run returns the process exit code: 0 healthy, 1 unhealthy or unreachable, 2 bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	path := "/healthz"
	switch {
	case len(args) > 1:
		fmt.Fprintln(stderr, "healthcheck: want at most one argument, /healthz or /readyz")
		return 2
	case len(args) == 1:
		path = args[0]
	}
	if path != "/healthz" && path != "/readyz" {
		fmt.Fprintf(stderr, "healthcheck: %q is not /healthz or /readyz\n", path)
		return 2
	}
	url, err := target(getenv("TAP_HTTP_ADDR"), path)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := get(ctx, url); err != nil {
		fmt.Fprintf(stderr, "healthcheck: GET %s: %v\n", url, err)
		return 1
	}
	return 0
}

// target turns tapbot's listen address into the URL to ask. A wildcard host means tapbot listens
// on every interface, so loopback reaches it without depending on the container's DNS.
func target(addr, path string) (string, error) {
	if strings.TrimSpace(addr) == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil || port == "" {
		return "", fmt.Errorf("TAP_HTTP_ADDR %q is not host:port or :port", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// get succeeds on 200 only. Otherwise the error carries the first line of tapbot's answer, which
// says what is wrong (for example "Slack socket mode is not connected").
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// No proxy: the health server is local, and HTTP(S)_PROXY in the container is meant for Slack
	// and Graph.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 512)).ReadString('\n')
	if line = strings.TrimSpace(line); line == "" {
		return errors.New(resp.Status)
	}
	return fmt.Errorf("%s: %s", resp.Status, line)
}
