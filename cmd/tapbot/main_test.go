package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this very binary as the tapbot command, so start-up behaviour is
// checked on the real main without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("TAPBOT_TEST_RUN_MAIN") == "1" {
		setReplicaHooks()
		// The command line the test wants tapbot to see, e.g. "audit --json".
		os.Args = append(os.Args[:1], strings.Fields(os.Getenv("TAPBOT_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// setReplicaHooks prepares this process to be a replica the tests kill: it trusts the fake
// Entra/Graph certificate, heartbeats fast, and SIGKILLs itself at the step named in
// TAPBOT_TEST_CRASH_AT, exactly as kill -9 would.
func setReplicaHooks() {
	if path := os.Getenv("TAPBOT_TEST_CA"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			panic(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		testHooks.Transport = tr
	}
	testHooks.HeartbeatTTL = time.Second
	testHooks.SweepEvery = 200 * time.Millisecond
	crashAt := os.Getenv("TAPBOT_TEST_CRASH_AT")
	testHooks.Checkpoint = func(step string) {
		if step == crashAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way; take no further step
		}
	}
}

func TestBadConfigurationExitsWithOneLine(t *testing.T) {
	full := map[string]string{
		"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1",
		"TAP_APPROVAL_CHANNEL": "C0APPROVE", "TAP_APPROVERS": "U0AAA",
		"TAP_HTTP_ADDR": "127.0.0.1:0",
	}
	tests := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"missing bot token", map[string]string{"SLACK_BOT_TOKEN": ""}, "tapbot: SLACK_BOT_TOKEN: required"},
		{"missing approvers", map[string]string{"TAP_APPROVERS": ""}, "tapbot: TAP_APPROVERS: required"},
		{"redis without key", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}, "tapbot: TAP_ENCRYPTION_KEY: required"},
		{"channel name", map[string]string{"TAP_APPROVAL_CHANNEL": "#approvals"}, "tapbot: TAP_APPROVAL_CHANNEL:"},
		{"bad lifetime", map[string]string{"TAP_MAX_LIFETIME": "forever"}, "tapbot: TAP_MAX_LIFETIME:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Dir = t.TempDir() // no .env here
			cmd.Env = []string{"TAPBOT_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			for k, v := range full {
				if o, ok := tt.set[k]; ok {
					v = o
				}
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			for k, v := range tt.set {
				if _, ok := full[k]; !ok {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
			}
			var stderr, stdout bytes.Buffer
			cmd.Stderr, cmd.Stdout = &stderr, &stdout
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
				t.Fatalf("stderr = %q, want one line starting %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestStartupRefusalsNameTheVariable starts tapbot against the fakes with one credential wrong:
// it must stop at once and say which variable to fix, without echoing the secret.
func TestStartupRefusalsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		opt  worldOption
		want string
	}{
		{"wrong bot token", withEnv("SLACK_BOT_TOKEN", "xoxb-wrong"), "SLACK_BOT_TOKEN: Slack did not accept the bot token"},
		{"wrong app token", withEnv("SLACK_APP_TOKEN", "xapp-wrong"), "SLACK_APP_TOKEN: Slack did not open a socket-mode connection"},
		{"wrong client secret", withEnv("AZURE_CLIENT_SECRET", "not-the-secret-123"),
			"AZURE_CLIENT_SECRET: Entra ID refused the client secret: AADSTS7000215: Invalid client secret provided (invalid_client); put the client secret's Value (not its Secret ID)"},
		{"unreachable redis", func(w *world) {
			withRedis(w)
			w.env["REDIS_URL"] = "unix://" + t.TempDir() + "/nothing.sock"
		}, "REDIS_URL: cannot reach Redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opt, withoutStart)
			err := w.run()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error starting %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "not-the-secret-123") || strings.Contains(err.Error(), "-wrong") {
				t.Fatalf("the start-up error shows a secret: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("the start-up error spans lines: %q", err)
			}
			w.slack.ResetViolations() // the refused auth.test is the point of the test
		})
	}
}

// TestEveryCommandAnswersHelp: tapbot and each of its commands print their help for -h and
// --help, exit 0, and run nothing, on a machine with nothing configured.
func TestEveryCommandAnswersHelp(t *testing.T) {
	tests := []struct {
		args string
		want string // in the help
	}{
		{"help", "tapbot doctor"}, {"-h", "tapbot doctor"}, {"--help", "tapbot COMMAND -h"},
		{"help -h", "tapbot audit"},
		{"doctor -h", "Usage: tapbot doctor"}, {"doctor --help", "Usage: tapbot doctor"},
		{"demo -h", "Usage: tapbot demo"}, {"demo --help", "Usage: tapbot demo"},
		{"audit -h", "Usage: tapbot audit"}, {"audit --help", "-since duration"}, {"audit --json -h", "Usage: tapbot audit"},
		{"help -h", "tapbot passes"}, {"passes -h", "Usage: tapbot passes"}, {"passes --help", "-since duration"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			stdout, stderr, status := runTapbot(t, map[string]string{}, strings.Fields(tt.args)...)
			if status != 0 || stderr != "" {
				t.Fatalf("tapbot %s: exit %d, stderr:\n%s", tt.args, status, stderr)
			}
			if !strings.Contains(stdout, tt.want) {
				t.Errorf("tapbot %s printed\n%s\nwant the help with %q", tt.args, stdout, tt.want)
			}
			// The help, not the command: no transcript, no checklist, no trail.
			for _, ran := range []string{"▶ ", "✓ ", "✗ ", "○ ", "REDIS_URL is not set"} {
				if strings.Contains(stdout, ran) {
					t.Errorf("tapbot %s ran the command (%q):\n%s", tt.args, ran, stdout)
				}
			}
		})
	}
}

// TestCommandsRefuseWhatTheyDoNotTake: a flag or argument a command does not take is one line
// pointing to its help, not a run that ignores it.
func TestCommandsRefuseWhatTheyDoNotTake(t *testing.T) {
	tests := []struct{ args, want string }{
		{"doctor --fix", "tapbot: doctor: flag provided but not defined: -fix; see tapbot doctor -h"},
		{"demo fast", `tapbot: demo: unexpected argument "fast"; see tapbot demo -h`},
		{"audit --since", "tapbot: audit: flag needs an argument: -since; see tapbot audit -h"},
		{"audit 24h", `tapbot: audit: unexpected argument "24h"; see tapbot audit -h`},
		{"passes --since 60d", `tapbot: passes: --since: "60d" is too long; use from 1s to 30d`},
		{"passes all", `tapbot: passes: unexpected argument "all"; see tapbot passes -h`},
		{"status", `tapbot: unknown command "status"; see tapbot help`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			stdout, stderr, status := runTapbot(t, map[string]string{}, strings.Fields(tt.args)...)
			if status != 1 || strings.TrimRight(stderr, "\n") != tt.want || stdout != "" {
				t.Fatalf("tapbot %s: exit %d\nstdout: %s\nstderr: %s\nwant stderr %q", tt.args, status, stdout, stderr, tt.want)
			}
		})
	}
}

// runTapbot runs this binary as `tapbot args...` in an empty directory with exactly env (and
// PATH and HOME), and returns what it printed and its exit status.
func runTapbot(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir() // no .env here
	cmd.Env = []string{"TAPBOT_TEST_RUN_MAIN=1", "TAPBOT_TEST_ARGS=" + strings.Join(args, " "), "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		status = exit.ExitCode()
	default:
		t.Fatalf("run tapbot %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), status
}

// TestEveryConfigurationMistakeInOneRun: a start reports every missing or wrong variable
// together, one line each, and no stack trace.
func TestEveryConfigurationMistakeInOneRun(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // the lines on stderr, by prefix
	}{
		{
			name: "empty configuration",
			env:  map[string]string{},
			want: []string{
				"tapbot: SLACK_APP_TOKEN: required: the app-level token",
				"tapbot: SLACK_BOT_TOKEN: required: the bot token",
				"tapbot: TAP_APPROVAL_CHANNEL: required: the ID",
				"tapbot: TAP_APPROVERS: required: a comma-separated list",
			},
		},
		{
			name: "wrong values",
			env: map[string]string{
				"SLACK_APP_TOKEN": "xoxb-1", "SLACK_BOT_TOKEN": "xoxb-1", "TAP_APPROVAL_CHANNEL": "C0APPROVE",
				"TAP_APPROVERS": "@ari", "TAP_REQUEST_TTL": "30s", "TAP_GRAPH_CONCURRENCY": "0",
			},
			want: []string{
				"tapbot: SLACK_APP_TOKEN: must be an app-level token",
				"tapbot: TAP_GRAPH_CONCURRENCY:",
				"tapbot: TAP_APPROVERS: \"@ari\" is not a Slack user ID",
				"tapbot: TAP_REQUEST_TTL: \"30s\" is too short; use from 5m to 30d",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runTapbot(t, tt.env)
			if status != 1 {
				t.Fatalf("exit status %d, want 1; stderr:\n%s", status, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(tt.want), stderr)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d = %q, want it to start %q", i+1, lines[i], w)
				}
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, ".go:") || stdout != "" {
				t.Errorf("a stack trace or other output:\nstdout: %s\nstderr: %s", stdout, stderr)
			}
		})
	}
}

// TestEntraCredentialErrorsAreOneLine starts tapbot with no AZURE_* variable at all, and with an
// authority host that does not answer: each stops it with one line that says what was tried and
// lacked, or which host could not be reached, instead of azidentity's chain.
func TestEntraCredentialErrorsAreOneLine(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world)
		want  []string // the line starts with the first, and holds every other
	}{
		{
			name: "nothing set",
			setup: func(w *world) {
				for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST"} {
					delete(w.env, k)
					w.t.Setenv(k, "")
					os.Unsetenv(k) // azidentity tells an empty variable from an unset one
				}
				w.env["PATH"] = w.t.TempDir() // no az, azd or pwsh, whatever this machine has
				// Not in Azure: no managed identity endpoint answers, whatever this network does.
				w.routes = map[string]http.RoundTripper{"169.254.169.254": noRoute{}}
			},
			want: []string{"AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET: no Azure credential found: ",
				"EnvironmentCredential: no AZURE_TENANT_ID", "WorkloadIdentityCredential: no AZURE_CLIENT_ID",
				"ManagedIdentityCredential: no managed identity endpoint answered", "AzurePowerShellCredential: not installed", "; set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"},
		},
		{
			name: "authority host does not answer",
			setup: func(w *world) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					w.t.Fatal(err)
				}
				w.env["AZURE_AUTHORITY_HOST"] = "https://" + l.Addr().String() + "/"
				w.env["closed"] = l.Addr().String()
				l.Close()
			},
			want: []string{"cannot reach Entra ID at ", ": connection refused; check this host's network access to Entra ID"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withoutStart)
			tt.setup(w)
			err := w.run()
			if err == nil {
				t.Fatal("tapbot started without a Graph token")
			}
			line := err.Error()
			t.Logf("%d characters: %s", len(line), line)
			if !strings.HasPrefix(line, tt.want[0]) || strings.Contains(line, "\n") || len(line) > 600 {
				t.Fatalf("error %q, want one line starting %q", line, tt.want[0])
			}
			for _, want := range tt.want[1:] {
				if !strings.Contains(line, want) {
					t.Errorf("error lacks %q", want)
				}
			}
			if closed := w.env["closed"]; closed != "" && !strings.Contains(line, closed) {
				t.Errorf("error does not name the host %s", closed)
			}
			for _, blame := range []string{"AZURE_TENANT_ID/", "AZURE_CLIENT_SECRET:"} {
				if tt.name == "authority host does not answer" && strings.HasPrefix(line, blame) {
					t.Errorf("a network failure blames the variables: %q", line)
				}
			}
		})
	}
}

// noRoute is a network with no route to the host asked for.
type noRoute struct{}

func (noRoute) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.EHOSTUNREACH}
}
