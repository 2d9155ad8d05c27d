package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version, revision and buildDate are set when the binary is linked, as the Dockerfile does:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.revision=$(git rev-parse HEAD) -X main.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/tapbot
//
// What is left empty comes from the build information Go embeds (runtime/debug.ReadBuildInfo):
// the module version of go install, and the commit of a go build run in a git checkout.
var (
	version   string
	revision  string
	buildDate string
)

// buildInfo is what tapbot says about its own build, in tapbot version, in the start-up log line
// and in the tapbot_build_info metric.
type buildInfo struct {
	Version    string // v1.2.0, a Go pseudo-version, or "devel"
	Revision   string // the commit, or "unknown"
	Modified   bool   // Go's build information says the checkout had uncommitted changes
	Date       string // when the binary was built, or "unknown"
	CommitTime string // when the commit was made, from Go's build information; may be ""
	Go         string // the Go release and platform, e.g. go1.26.8 linux/amd64
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Revision: revision, Date: buildDate, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Revision == "" {
					b.Revision = s.Value
				}
			case "vcs.time":
				b.CommitTime = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true" && revision == ""
			}
		}
	}
	for _, f := range []struct {
		v   *string
		def string
	}{{&b.Version, "devel"}, {&b.Revision, "unknown"}, {&b.Date, "unknown"}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	return b
}

// String is the one line tapbot version prints.
func (b buildInfo) String() string {
	rev := b.Revision
	if b.Modified {
		rev += " (with uncommitted changes)"
	}
	s := fmt.Sprintf("tapbot %s, revision %s, built %s", b.Version, rev, b.Date)
	if b.Date == "unknown" && b.CommitTime != "" {
		s += " (committed " + b.CommitTime + ")"
	}
	return s + ", " + b.Go
}

// printVersion is tapbot version (and tapbot --version).
func printVersion(out io.Writer) error {
	_, err := fmt.Fprintln(out, readBuildInfo())
	return err
}
