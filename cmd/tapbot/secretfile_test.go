package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsFromFilesStartTheBot starts tapbot with its four secrets only in files, as Docker
// and Kubernetes mount them (SLACK_BOT_TOKEN_FILE, SLACK_APP_TOKEN_FILE, REDIS_URL_FILE,
// TAP_ENCRYPTION_KEY_FILE), and checks that it serves and never logs them.
func TestSecretsFromFilesStartTheBot(t *testing.T) {
	w := newWorld(t, withoutStart, withRedis)
	dir := t.TempDir()
	var secrets []string
	for _, name := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "REDIS_URL", "TAP_ENCRYPTION_KEY"} {
		path := filepath.Join(dir, strings.ToLower(name))
		if err := os.WriteFile(path, []byte(w.env[name]+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, w.env[name])
		w.env[name], w.env[name+"_FILE"] = "", path
	}
	w.start()
	w.tap(manager, "<@UADA> 1h once new laptop")
	w.approvalMessage(1)
	for _, s := range secrets {
		if strings.Contains(w.logs.String(), s) {
			t.Errorf("a secret read from a file is in the log (%.8s…)", s)
		}
	}
}
