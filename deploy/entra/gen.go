//go:build ignore

// gen writes the scripts of package entra from graph.Permissions: go generate ./deploy/entra.
package main

import (
	"log"
	"os"
	"strings"

	"github.com/tapbot/tapbot/deploy/entra"
	"github.com/tapbot/tapbot/graph"
)

func main() {
	for name := range entra.Files {
		out, err := entra.Render(name, graph.Permissions)
		if err != nil {
			log.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(name, out, mode); err != nil {
			log.Fatal(err)
		}
	}
}
