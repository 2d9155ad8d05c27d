package config

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// SecretVars are the variables that may instead name a file holding the value, as NAME_FILE:
// the convention of Docker and Kubernetes secrets mounted as files.
var SecretVars = []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "REDIS_URL", "TAP_ENCRYPTION_KEY"}

// secret is a secret variable's value and where it came from, so a message names the variable
// (or the file) to fix and never the value.
type secret struct {
	value string
	from  string // NAME, or NAME_FILE when read from the file
	path  string // the file, when read from one
}

// problem reports that the value is wrong, under the variable it came from.
func (s secret) problem(l *loader, problem string) {
	if s.path != "" {
		problem = s.path + ": " + problem
	}
	l.fail(s.from, problem)
}

// secret reads name, or the file name_FILE names (its content trimmed of surrounding white
// space, the trailing newline of most secret files included). Setting both is a mistake, and so
// is a file that cannot be read or is empty; each is reported, and the value is then "".
func (l *loader) secret(name string) secret {
	v, path := l.get(name), l.get(name+"_FILE")
	switch {
	case path == "":
		return secret{value: v, from: name}
	case v != "":
		l.fail(name, "both "+name+" and "+name+"_FILE are set; keep one")
		return secret{from: name}
	}
	content, err := readSecretFile(path)
	if err != nil {
		l.fail(name+"_FILE", err.Error())
		return secret{from: name + "_FILE", path: path}
	}
	return secret{value: content, from: name + "_FILE", path: path}
}

// readSecretFile reads a secret file, and says in one line why it cannot.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", errors.New("cannot read " + path + ": there is no such file; mount the secret there or fix the path")
	case errors.Is(err, fs.ErrPermission):
		return "", errors.New("cannot read " + path + ": permission denied; let tapbot's user read it")
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", errors.New("cannot read " + path + ": " + err.Error())
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", errors.New(path + " is empty")
	}
	return v, nil
}

// Secrets are the values of every secret tapbot reads (SecretVars, from the environment or their
// files, and AZURE_CLIENT_SECRET), whether or not the configuration loads, so that output built
// from errors can be redacted. Files that cannot be read are left out.
func Secrets(getenv func(string) string) []string {
	var out []string
	for _, name := range append(SecretVars, "AZURE_CLIENT_SECRET") {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			out = append(out, v)
		}
		if path := strings.TrimSpace(getenv(name + "_FILE")); path != "" {
			if v, err := readSecretFile(path); err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}
