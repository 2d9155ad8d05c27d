package check

import (
	"os"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// DockerIgnored reports, for each path, whether .dockerignore keeps it out of the build context,
// with the matcher and the rules (exceptions with !, parents of excluded paths) BuildKit uses.
func DockerIgnored(dockerignore string, paths ...string) (map[string]bool, error) {
	f, err := os.Open(dockerignore)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range paths {
		if out[p], err = pm.MatchesOrParentMatches(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}
