package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTarget(t *testing.T) {
	tests := []struct {
		addr, path, want, wantErr string
	}{
		{addr: "", path: "/healthz", want: "http://127.0.0.1:8080/healthz"},
		{addr: ":9090", path: "/readyz", want: "http://127.0.0.1:9090/readyz"},
		{addr: "0.0.0.0:8080", path: "/healthz", want: "http://127.0.0.1:8080/healthz"},
		{addr: "[::]:8080", path: "/healthz", want: "http://[::1]:8080/healthz"},
		{addr: "10.0.0.7:8080", path: "/healthz", want: "http://10.0.0.7:8080/healthz"},
		{addr: "8080", path: "/healthz", wantErr: `TAP_HTTP_ADDR "8080" is not host:port or :port`},
		{addr: "localhost:", path: "/healthz", wantErr: `TAP_HTTP_ADDR "localhost:" is not host:port or :port`},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := target(tt.addr, tt.path)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("target(%q) = %q, %v; want error %q", tt.addr, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("target(%q) = %q, %v; want %q", tt.addr, got, err, tt.want)
			}
		})
	}
}

// TestRun drives the probe against real HTTP servers answering the way tapbot's do, and checks
// the exit code and the reason a container runtime would show.
func TestRun(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "Slack socket mode is not connected; store unreachable")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	// A port nobody listens on: take one, then free it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		addr     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"healthy", addr, nil, 0, ""},
		{"healthz named", addr, []string{"/healthz"}, 0, ""},
		{"not ready", addr, []string{"/readyz"}, 1, "503 Service Unavailable: Slack socket mode is not connected; store unreachable"},
		{"nothing listening", closed, nil, 1, "connection refused"},
		{"other path", addr, []string{"/metrics"}, 2, `"/metrics" is not /healthz or /readyz`},
		{"two paths", addr, []string{"/healthz", "/readyz"}, 2, "want at most one argument"},
		{"bad address", "nonsense", nil, 2, `TAP_HTTP_ADDR "nonsense" is not host:port or :port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := map[string]string{"TAP_HTTP_ADDR": tt.addr}
			code := run(context.Background(), tt.args, func(k string) string { return env[k] }, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if tt.wantErr == "" && stderr.Len() != 0 {
				t.Fatalf("healthy probe printed %q", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("stderr %q does not say %q", stderr.String(), tt.wantErr)
			}
		})
	}
}
