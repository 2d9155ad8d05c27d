package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/config"
)

// TestSecretsFromFiles: SLACK_BOT_TOKEN_FILE and the others read the value from a file, as
// Docker and Kubernetes mount secrets, trimming its trailing newline; both set, an unreadable or
// empty file, or a wrong value in it is one line naming the _FILE variable, never the value.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bot := file("bot", "xoxb-from-file\n")
	app := file("app", "xapp-from-file\r\n")
	keyFile := file("key", key+"\n")
	redisFile := file("redis", "redis://:from-file-pw@redis:6379/0\n")
	empty := file("empty", "\n")
	wrong := file("wrong", "xapp-wrong-kind-of-token\n")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name    string
		set     map[string]string
		check   func(c config.Config) bool
		wantErr string
	}{
		{name: "every secret from its file",
			set: map[string]string{"SLACK_BOT_TOKEN": "", "SLACK_BOT_TOKEN_FILE": bot, "SLACK_APP_TOKEN": "", "SLACK_APP_TOKEN_FILE": app,
				"TAP_ENCRYPTION_KEY_FILE": keyFile, "REDIS_URL_FILE": redisFile},
			check: func(c config.Config) bool {
				return c.SlackBotToken == "xoxb-from-file" && c.SlackAppToken == "xapp-from-file" &&
					len(c.EncryptionKeys) == 1 && c.RedisURL == "redis://:from-file-pw@redis:6379/0"
			}},
		{name: "both set", set: map[string]string{"SLACK_BOT_TOKEN_FILE": bot},
			wantErr: "SLACK_BOT_TOKEN: both SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE are set; keep one"},
		{name: "no such file", set: map[string]string{"SLACK_APP_TOKEN": "", "SLACK_APP_TOKEN_FILE": missing},
			wantErr: "SLACK_APP_TOKEN_FILE: cannot read " + missing + ": there is no such file; mount the secret there or fix the path"},
		{name: "a directory", set: map[string]string{"REDIS_URL_FILE": dir, "TAP_ENCRYPTION_KEY": key},
			wantErr: "REDIS_URL_FILE: cannot read " + dir + ": is a directory"},
		{name: "empty file", set: map[string]string{"TAP_ENCRYPTION_KEY_FILE": empty},
			wantErr: "TAP_ENCRYPTION_KEY_FILE: " + empty + " is empty"},
		{name: "wrong value in the file", set: map[string]string{"SLACK_BOT_TOKEN": "", "SLACK_BOT_TOKEN_FILE": wrong},
			wantErr: "SLACK_BOT_TOKEN_FILE: " + wrong + ": must be a bot token starting with xoxb-"},
		{name: "a file of the Redis URL still needs the key", set: map[string]string{"REDIS_URL_FILE": redisFile},
			wantErr: "TAP_ENCRYPTION_KEY: required when REDIS_URL is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(tt.set))
			if tt.wantErr == "" {
				if err != nil || !tt.check(c) {
					t.Fatalf("Load = %+v, %v", c, err)
				}
				return
			}
			problems := config.Problems(err)
			if len(problems) != 1 || problems[0].Error() != tt.wantErr && !strings.HasPrefix(problems[0].Error(), tt.wantErr) {
				t.Fatalf("problems = %q, want one starting %q", problems, tt.wantErr)
			}
			for _, secret := range []string{"xoxb-from-file", "xapp-wrong-kind-of-token", "from-file-pw", key} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret's value: %v", err)
				}
			}
		})
	}
}

func TestSecretsListsFileContents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot")
	if err := os.WriteFile(path, []byte("xoxb-in-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := config.Secrets(env(map[string]string{"SLACK_BOT_TOKEN": "", "SLACK_BOT_TOKEN_FILE": path, "AZURE_CLIENT_SECRET": "s3cret"}))
	want := map[string]bool{"xoxb-in-a-file": true, "xapp-1-A-1-abc": true, "s3cret": true}
	for _, s := range got {
		delete(want, s)
	}
	if len(want) > 0 {
		t.Fatalf("Secrets = %q, missing %v", got, want)
	}
}

// TestEveryVariableIsDocumented: every variable Load reads is in .env.example and in README.md,
// so neither falls behind what tapbot understands (deploy/check also reads .env.example to know
// which names tapbot reads).
func TestEveryVariableIsDocumented(t *testing.T) {
	read := map[string]bool{}
	_, _ = config.Load(func(k string) string { read[k] = true; return "" })
	_, _ = config.Load(env(map[string]string{"REDIS_URL": "redis://r:6379"})) // reads the rest
	for _, k := range []string{"SLACK_BOT_TOKEN_FILE", "SLACK_APP_TOKEN_FILE", "REDIS_URL_FILE", "TAP_ENCRYPTION_KEY_FILE"} {
		if !read[k] {
			t.Errorf("Load does not read %s", k)
		}
	}
	// azidentity's own, which README.md leaves to azidentity's documentation: tapbot only checks
	// whether they are set.
	delete(read, "AZURE_CLIENT_CERTIFICATE_PATH")
	delete(read, "AZURE_FEDERATED_TOKEN_FILE")
	example, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range read {
		if !strings.Contains(string(example), "\n"+k+"=") && !strings.Contains(string(example), "\n# "+k+"=") {
			t.Errorf(".env.example does not list %s", k)
		}
		if !strings.Contains(string(readme), "`"+k+"`") {
			t.Errorf("README.md does not document %s", k)
		}
	}
}
