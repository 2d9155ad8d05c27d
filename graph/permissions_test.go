package graph_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/tapbot/tapbot/graph"
	"github.com/tapbot/tapbot/internal/graphfake"
)

// TestPermissionsAreWellFormed: every permission has a distinct name and a distinct app role ID
// in the GUID form Entra ID uses, so a typo cannot slip into the generated scripts.
func TestPermissionsAreWellFormed(t *testing.T) {
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	names, ids := map[string]bool{}, map[string]bool{}
	for _, p := range graph.Permissions {
		if !guid.MatchString(p.ID) {
			t.Errorf("%s: app role ID %q is not a lower-case GUID", p.Name, p.ID)
		}
		if names[p.Name] || ids[p.ID] {
			t.Errorf("%s (%s) is listed twice", p.Name, p.ID)
		}
		names[p.Name], ids[p.ID] = true, true
		if p.Why == "" {
			t.Errorf("%s: says not what it is for", p.Name)
		}
	}
	if !names[graph.AuthMethodsPermission] {
		t.Errorf("AuthMethodsPermission %s is not in Permissions", graph.AuthMethodsPermission)
	}
}

// TestFakeGrantsExactlyThePermissions: graphfake's app registration holds by default what
// graph.Permissions asks for, so the end-to-end tests run with exactly what an admin grants.
func TestFakeGrantsExactlyThePermissions(t *testing.T) {
	var want []string
	for _, p := range graph.Permissions {
		want = append(want, p.Name)
	}
	if got := graphfake.DefaultRoles; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("graphfake.DefaultRoles = %v\ngraph.Permissions      = %v", got, want)
	}
}
