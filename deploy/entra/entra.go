// Package entra renders the scripts in this folder that create tapbot's Entra ID app
// registration, create-app.sh (Azure CLI) and create-app.ps1 (Microsoft Graph PowerShell), from
// graph.Permissions: the list tapbot doctor checks a token against, so the permissions a script
// grants and the ones doctor expects are one list. After changing it, run
//
//	go generate ./deploy/entra
//
// and commit the scripts; this package's tests fail while a committed script differs.
package entra

//go:generate go run gen.go

import (
	"bytes"
	_ "embed"
	"text/template"

	"github.com/tapbot/tapbot/graph"
)

// Files are the scripts this package renders, by file name in this folder.
var Files = map[string]*template.Template{
	"create-app.sh":  template.Must(template.New("create-app.sh").Parse(shTemplate)),
	"create-app.ps1": template.Must(template.New("create-app.ps1").Parse(ps1Template)),
}

var (
	//go:embed create-app.sh.tmpl
	shTemplate string
	//go:embed create-app.ps1.tmpl
	ps1Template string
)

// Render returns the script name (a key of Files) for these permissions.
func Render(name string, perms []graph.Permission) ([]byte, error) {
	var b bytes.Buffer
	err := Files[name].Execute(&b, struct {
		GraphAppID  string
		Permissions []graph.Permission
	}{graph.MicrosoftGraphAppID, perms})
	return b.Bytes(), err
}
