package entra_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/deploy/entra"
	"github.com/tapbot/tapbot/graph"
)

// The fake az's answers (testdata/az).
const (
	fakeTenant = "72f988bf-0000-4000-8000-000000000001"
	fakeAppID  = "0b0b0b0b-1111-4222-8333-444444444444"
	fakeSecret = "Fake~Secret.0123456789abcdefghijklmnopqrstuv"
)

// TestScriptsAreGeneratedFromThePermissions: the committed scripts are exactly what
// graph.Permissions renders, so the app they create is the app doctor checks.
func TestScriptsAreGeneratedFromThePermissions(t *testing.T) {
	for name := range entra.Files {
		want, err := entra.Render(name, graph.Permissions)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("deploy/entra/%s differs from what graph.Permissions renders: run go generate ./deploy/entra and commit the result", name)
		}
	}
}

func permissionIDs() []string {
	var ids []string
	for _, p := range graph.Permissions {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestScriptsGrantExactlyThePermissions reads what each committed script asks for, without the
// templates: every permission of graph.Permissions and no other, so a template that lost one
// cannot pass just because its output was committed.
func TestScriptsGrantExactlyThePermissions(t *testing.T) {
	sh, err := os.ReadFile("create-app.sh")
	if err != nil {
		t.Fatal(err)
	}
	add := regexp.MustCompile(`(?s)az ad app permission add [^\n]*--api-permissions((?: \\\n\s*[0-9a-f-]{36}=Role)+)\n`).FindSubmatch(sh)
	if add == nil {
		t.Fatal("create-app.sh has no az ad app permission add --api-permissions ID=Role ... command")
	}
	var got []string
	for _, m := range regexp.MustCompile(`([0-9a-f-]{36})=Role`).FindAllSubmatch(add[1], -1) {
		got = append(got, string(m[1]))
	}
	if want := permissionIDs(); !slices.Equal(got, want) {
		t.Errorf("create-app.sh asks for %v\ngraph.Permissions are %v", got, want)
	}

	ps1, err := os.ReadFile("create-app.ps1")
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`(?m)^    '([A-Za-z.-]+)' = '([0-9a-f-]{36})'$`).FindAllSubmatch(ps1, -1)
	var names, ids []string
	for _, m := range table {
		names, ids = append(names, string(m[1])), append(ids, string(m[2]))
	}
	var wantNames []string
	for _, p := range graph.Permissions {
		wantNames = append(wantNames, p.Name)
	}
	if !slices.Equal(names, wantNames) || !slices.Equal(ids, permissionIDs()) {
		t.Errorf("create-app.ps1 asks for %v %v\ngraph.Permissions are %v %v", names, ids, wantNames, permissionIDs())
	}
}

// TestREADMEListsThePermissions keeps the manual steps in README.md asking for the same
// permissions as the scripts and doctor.
func TestREADMEListsThePermissions(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### 2. The Entra ID app registration")
	if !ok {
		t.Fatal(`README.md has no "### 2. The Entra ID app registration" section`)
	}
	section, _, _ = strings.Cut(section, "\n### ")
	var got []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z.-]+)` \\|").FindAllStringSubmatch(section, -1) {
		got = append(got, m[1])
	}
	var want []string
	for _, p := range graph.Permissions {
		want = append(want, p.Name)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("README.md's Entra ID permission table lists %v\ngraph.Permissions are      %v", got, want)
	}
}

// run is one run of create-app.sh against the fake az.
type run struct {
	stdout, stderr string
	err            error
	calls          []string // the az command lines, in order
	dir            string   // the working directory
}

func (r run) called(prefix string) bool {
	return slices.ContainsFunc(r.calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

// runScript runs the committed create-app.sh with the fake az first on PATH, in a fresh
// working directory. roles is Microsoft Graph's app roles as the fake reports them; env adds
// FAKE_AZ_* settings.
func runScript(t *testing.T, roles []graph.Permission, env []string, args ...string) run {
	t.Helper()
	script, err := filepath.Abs("create-app.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin, dir := t.TempDir(), t.TempDir()
	fake, err := os.ReadFile("testdata/az")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "az"), fake, 0o755); err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for _, p := range roles {
		table.WriteString(p.ID + "\t" + p.Name + "\n")
	}
	// Graph has many more app roles than tapbot asks for.
	table.WriteString("7ab1d382-f21e-4acd-a863-ba3e13f7da61\tDirectory.Read.All\n")
	rolesFile, logFile := filepath.Join(bin, "roles.tsv"), filepath.Join(bin, "calls.log")
	if err := os.WriteFile(rolesFile, []byte(table.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"FAKE_AZ_ROLES=" + rolesFile, "FAKE_AZ_LOG=" + logFile, "HOME=" + dir}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := run{err: cmd.Run(), stdout: stdout.String(), stderr: stderr.String(), dir: dir}
	if log, err := os.ReadFile(logFile); err == nil {
		r.calls = strings.Split(strings.TrimSpace(string(log)), "\n")
	}
	return r
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCreateAppScript runs create-app.sh against a fake Azure CLI: what it asks Entra ID for,
// what it prints, where the secret goes, and that it stops before creating anything when a
// check fails.
func TestCreateAppScript(t *testing.T) {
	ids := " " + strings.Join(permissionIDs(), "=Role ") + "=Role"
	created := []string{
		"ad app create --only-show-errors --display-name tapbot --sign-in-audience AzureADMyOrg --query appId -o tsv",
		"ad app permission add --only-show-errors --id " + fakeAppID + " --api " + graph.MicrosoftGraphAppID + " --api-permissions" + ids,
		"ad sp create --only-show-errors --id " + fakeAppID,
		"ad app permission admin-consent --only-show-errors --id " + fakeAppID,
	}
	ids4 := "AZURE_TENANT_ID=" + fakeTenant + "\nAZURE_CLIENT_ID=" + fakeAppID + "\n"

	t.Run("default: the secret goes to a private file", func(t *testing.T) {
		r := runScript(t, graph.Permissions, nil)
		if r.err != nil {
			t.Fatalf("exit %v\n%s", r.err, r.stderr)
		}
		if r.stdout != ids4 {
			t.Errorf("stdout = %q, want %q", r.stdout, ids4)
		}
		for _, c := range created {
			if !r.called(c) {
				t.Errorf("no call az %s\ncalls: %q", c, r.calls)
			}
		}
		if strings.Contains(r.stdout+r.stderr, fakeSecret) {
			t.Errorf("the secret was printed:\n%s%s", r.stdout, r.stderr)
		}
		path := filepath.Join(r.dir, "tapbot-entra.env")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("tapbot-entra.env has mode %v, want -rw-------", fi.Mode().Perm())
		}
		if got, _ := os.ReadFile(path); string(got) != ids4+"AZURE_CLIENT_SECRET="+fakeSecret+"\n" {
			t.Errorf("tapbot-entra.env = %q", got)
		}
		if !strings.Contains(r.stderr, "AZURE_CLIENT_SECRET is in tapbot-entra.env") {
			t.Errorf("stderr does not say where the secret is:\n%s", r.stderr)
		}
	})

	t.Run("--show-secret prints it on stdout", func(t *testing.T) {
		r := runScript(t, graph.Permissions, nil, "--show-secret", "--name", "tapbot-test")
		if r.err != nil {
			t.Fatalf("exit %v\n%s", r.err, r.stderr)
		}
		if want := ids4 + "AZURE_CLIENT_SECRET=" + fakeSecret + "\n"; r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
		if strings.Contains(r.stderr, fakeSecret) {
			t.Errorf("the secret is in stderr:\n%s", r.stderr)
		}
		if !r.called("ad app create --only-show-errors --display-name tapbot-test ") {
			t.Errorf("--name was not used: %q", r.calls)
		}
		if _, err := os.Stat(filepath.Join(r.dir, "tapbot-entra.env")); err == nil {
			t.Error("wrote a secret file although asked to print the secret")
		}
	})

	t.Run("--no-secret creates none", func(t *testing.T) {
		r := runScript(t, graph.Permissions, nil, "--no-secret")
		if r.err != nil || r.stdout != ids4 || r.called("ad app credential") {
			t.Errorf("exit %v, stdout %q, calls %q", r.err, r.stdout, r.calls)
		}
	})

	// Each of these stops the script before it creates anything.
	moved := slices.Clone(graph.Permissions)
	moved[1].Name = "UserAuthenticationMethod.ReadWrite.All" // the ID now names a broader role
	for _, tt := range []struct {
		name  string
		roles []graph.Permission
		env   []string
		args  []string
		want  string
	}{
		{name: "an app role ID names another permission", roles: moved,
			want: "create-app.sh: Microsoft Graph's app role " + graph.Permissions[1].ID + " is 'UserAuthenticationMethod.ReadWrite.All', not " +
				graph.Permissions[1].Name + ": nothing was created"},
		{name: "an app role is missing", roles: graph.Permissions[1:],
			want: "create-app.sh: Microsoft Graph's app role " + graph.Permissions[0].ID + " is 'missing', not User.Read.All: nothing was created"},
		{name: "the name is taken", roles: graph.Permissions, env: []string{"FAKE_AZ_EXISTING=9c9c9c9c-0000-4000-8000-000000000009"},
			want: "create-app.sh: an app registration named tapbot exists already (9c9c9c9c-0000-4000-8000-000000000009); choose another --name"},
		{name: "not signed in", roles: graph.Permissions, env: []string{"FAKE_AZ_FAIL=account show"},
			want: "create-app.sh: not signed in: run az login"},
		{name: "an unknown argument", roles: graph.Permissions, args: []string{"--secret"},
			want: "create-app.sh: unknown argument --secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runScript(t, tt.roles, tt.env, tt.args...)
			if exitCode(r.err) == 0 {
				t.Fatalf("exit 0; want a failure saying %q", tt.want)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, r.stderr)
			}
			if r.called("ad app create") || r.stdout != "" {
				t.Errorf("went on after the failed check: stdout %q, calls %q", r.stdout, r.calls)
			}
		})
	}

	t.Run("a secret file that exists is never overwritten", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "old.env")
		if err := os.WriteFile(path, []byte("keep me\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runScript(t, graph.Permissions, nil, "--secret-file", path)
		if exitCode(r.err) == 0 || !strings.Contains(r.stderr, path+" exists already") || len(r.calls) > 0 {
			t.Errorf("exit %v, stderr %q, calls %q", r.err, r.stderr, r.calls)
		}
		if got, _ := os.ReadFile(path); string(got) != "keep me\n" {
			t.Errorf("the file now holds %q", got)
		}
	})

	t.Run("a failure after the app exists says how to finish or undo", func(t *testing.T) {
		r := runScript(t, graph.Permissions, []string{"FAKE_AZ_FAIL=ad app credential"})
		if exitCode(r.err) == 0 {
			t.Fatal("exit 0 although the secret could not be made")
		}
		want := "create-app.sh: stopped after creating the app registration tapbot (" + fakeAppID + "): finish by hand (README.md) or delete it with az ad app delete --id " + fakeAppID
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(r.dir, "tapbot-entra.env")); err == nil {
			t.Error("left a secret file without a secret")
		}
	})
}
