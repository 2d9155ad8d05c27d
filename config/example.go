package config

import "strings"

// exampleIDs are the IDs the templates (.env.example, deploy/compose.env.example and the
// Kubernetes examples in deploy/kubernetes) ship with. They look valid, so without this a copied
// template that nobody filled in would start and fail later, far from the cause.
var exampleIDs = map[string]bool{
	"C0123ABCD": true, "C0123ABCE": true, // channels
	"U0123ABCD": true, "S0123ABCD": true, "S0123ABCE": true, // people and user groups
	"00000000-0000-0000-0000-000000000000": true, // tenant, client and group IDs
}

// isExample reports whether v is a template's placeholder: one of its example IDs, a value
// marked REPLACE_ME, or one that trails off ("xoxb-...").
func isExample(v string) bool {
	return exampleIDs[strings.ToUpper(v)] || strings.Contains(strings.ToUpper(v), "REPLACE_ME") ||
		strings.HasSuffix(v, "...") || strings.HasSuffix(v, "…")
}

// stillExample is the problem of a variable that still holds its template's placeholder; shown
// is what was typed, or "" for a secret, whose value no message repeats.
func stillExample(shown, use string) string {
	if shown != "" {
		return `"` + shown + `" is still the example value; ` + use
	}
	return "still the example value; " + use
}
