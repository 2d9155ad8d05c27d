// Package check validates tapbot's deployment files offline: the Kubernetes manifests and what
// the Helm chart renders (with Helm's own Go SDK) against the built-in Kubernetes OpenAPI schemas
// that sigs.k8s.io/kubectl-validate embeds, the chart's objects against the manifests',
// docker-compose.yml with compose-go (the loader docker compose uses, with the Compose JSON schema
// built in), and the few things a working tapbot deployment needs that no schema knows. Run it
// with
//
//	cd deploy/check && go test ./...
//
// It is its own module so these heavy dependencies stay out of tapbot's go.mod.
package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/kubectl-validate/pkg/openapiclient"
	"sigs.k8s.io/kubectl-validate/pkg/utils"
	"sigs.k8s.io/kubectl-validate/pkg/validator"
)

// KubernetesVersion is the newest version whose schemas kubectl-validate v0.0.4 embeds. Fields
// added later would be rejected as unknown, which is the safe direction.
const KubernetesVersion = "1.30"

// NewKubeValidator uses only the schemas compiled into kubectl-validate: no cluster, no kubeconfig
// and no download, so the check gives the same answer on any machine, offline.
func NewKubeValidator() (*validator.Validator, error) {
	return validator.New(openapiclient.NewOverlay(
		openapiclient.HardcodedPatchLoader(KubernetesVersion),
		openapiclient.NewHardcodedBuiltins(KubernetesVersion),
	))
}

// ValidateKubeFile checks every document of a YAML file against its kind's schema: unknown or
// misspelt fields, wrong types, missing required fields, and object metadata (names, labels,
// annotations) as the API server checks it. The errors name the file and the document.
func ValidateKubeFile(v *validator.Validator, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return validateYAML(v, filepath.Base(path), data)
}

// validateYAML is ValidateKubeFile for YAML from anywhere; name says where in errors.
func validateYAML(v *validator.Validator, name string, data []byte) error {
	docs, err := utils.SplitYamlDocuments(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	for i, doc := range docs {
		if utils.IsEmptyYamlDocument(doc) {
			continue
		}
		_, obj, err := v.Parse(doc)
		if err == nil {
			err = v.Validate(obj)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (document %d): %w", name, i+1, err))
		}
	}
	return errors.Join(errs...)
}

// LoadCompose loads a Compose file the way docker compose does: schema validation, interpolation
// of ${VAR} from .env in the file's directory when there is one, consistency checks (for example
// depends_on naming a service that does not exist), and env_file resolved into each service's
// environment. Unlike docker compose it ignores this process's environment, so the answer does
// not depend on the machine.
func LoadCompose(ctx context.Context, path string) (*types.Project, error) {
	dir := filepath.Dir(path)
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithName("tapbot"),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}
