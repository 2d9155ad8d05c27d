package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// dockerfile is the image's build file, whose -ldflags and labels the tests check.
const dockerfile = "../../Dockerfile"

// TestVersionFromTheDockerfilesLdflags links tapbot with the -ldflags of the Dockerfile's build,
// build arguments filled in, and checks what tapbot version and --version print: the -X names in
// the Dockerfile are the variables tapbot reads.
func TestVersionFromTheDockerfilesLdflags(t *testing.T) {
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`go build[^\n]*-ldflags="([^"]*)"[^\n]*\./cmd/tapbot`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("the Dockerfile builds ./cmd/tapbot with no -ldflags")
	}
	ldflags := strings.NewReplacer("${VERSION}", "v1.2.3-test", "${REVISION}", "0123456789abcdef0123456789abcdef01234567",
		"${BUILD_DATE}", "2026-01-02T03:04:05Z").Replace(m[1])
	if strings.Contains(ldflags, "${") {
		t.Fatalf("the Dockerfile's -ldflags use a build argument this test does not know: %s", m[1])
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "tapbot")
	args := []string{"build", "-ldflags=" + ldflags, "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goTool, append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags=%q: %v\n%s", ldflags, err, out)
	}
	want := "tapbot v1.2.3-test, revision 0123456789abcdef0123456789abcdef01234567, built 2026-01-02T03:04:05Z, " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, arg := range []string{"version", "--version", "-version"} {
		cmd := exec.Command(bin, arg)
		cmd.Dir, cmd.Env = t.TempDir(), []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.Output()
		if err != nil || string(out) != want {
			t.Errorf("tapbot %s = %q, %v; want %q", arg, out, err, want)
		}
	}
}

// TestVersionWithoutLdflags: a binary linked without -ldflags still prints one line of the same
// shape, from Go's build information or saying what it does not know.
func TestVersionWithoutLdflags(t *testing.T) {
	stdout, stderr, status := runTapbot(t, map[string]string{}, "version")
	re := regexp.MustCompile(`^tapbot \S+, revision \S+( \(with uncommitted changes\))?, built \S+( \(committed \S+\))?, go\S+ \S+/\S+\n$`)
	if status != 0 || stderr != "" || !re.MatchString(stdout) {
		t.Fatalf("tapbot version: exit %d, stdout %q, stderr %q", status, stdout, stderr)
	}
	if h, _, _ := runTapbot(t, map[string]string{}, "version", "-h"); !strings.Contains(h, "Usage: tapbot version") {
		t.Errorf("tapbot version -h = %q", h)
	}
}

// TestBuildInfoInTheLogAndMetrics: the version, revision and build date linked in appear in the
// start-up log line and in tapbot_build_info.
func TestBuildInfoInTheLogAndMetrics(t *testing.T) {
	oldV, oldR, oldD := version, revision, buildDate
	version, revision, buildDate = "v9.8.7-test", "fedcba9876543210", "2026-03-04T05:06:07Z" // as -ldflags -X sets them
	t.Cleanup(func() { version, revision, buildDate = oldV, oldR, oldD })

	w := newWorld(t)
	_, body := w.get("/metrics")
	if want := `tapbot_build_info{revision="fedcba9876543210",version="v9.8.7-test"} 1`; !strings.Contains(body, want+"\n") {
		t.Errorf("/metrics lacks %s", want)
	}
	var started map[string]any
	for _, line := range strings.Split(w.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"tapbot started"`) {
			if err := json.Unmarshal([]byte(line), &started); err != nil {
				t.Fatal(err)
			}
		}
	}
	if started["version"] != "v9.8.7-test" || started["revision"] != "fedcba9876543210" || started["build_date"] != "2026-03-04T05:06:07Z" {
		t.Fatalf("start-up log line = %v, want the version, revision and build date", started)
	}
}

// TestImageLabels: the image says what it holds in the OCI annotations, from the same build
// arguments the binary is linked with, declared in the stage that uses them.
func TestImageLabels(t *testing.T) {
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	stages := strings.Split(string(raw), "\nFROM ")
	final := stages[len(stages)-1]
	for _, want := range []string{
		`org.opencontainers.image.version="${VERSION}"`,
		`org.opencontainers.image.revision="${REVISION}"`,
		`org.opencontainers.image.created="${BUILD_DATE}"`,
		`org.opencontainers.image.source="https://github.com/tapbot/tapbot"`,
		`org.opencontainers.image.licenses="Apache-2.0"`,
	} {
		if !strings.Contains(final, want) {
			t.Errorf("the image's LABEL lacks %s", want)
		}
	}
	for _, stage := range stages[1:] {
		for _, arg := range []string{"VERSION", "REVISION", "BUILD_DATE"} {
			if strings.Contains(stage, "${"+arg+"}") && !strings.Contains(stage, "\nARG "+arg) {
				t.Errorf("a stage uses ${%s} without declaring ARG %[1]s, so it would be empty", arg)
			}
		}
	}
}
