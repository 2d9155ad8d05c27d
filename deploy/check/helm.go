package check

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/kubectl-validate/pkg/validator"
	"sigs.k8s.io/yaml"
)

// Release is the release the chart is rendered as: `helm install tapbot deploy/helm/tapbot
// --namespace tapbot`, the names deploy/kubernetes uses.
var Release = chartutil.ReleaseOptions{Name: "tapbot", Namespace: "tapbot", Revision: 1, IsInstall: true}

// RenderChart renders the Helm chart in dir with values over its values.yaml, with Helm's own
// chart loader, values coalescing and template engine (helm.sh/helm/v3), as `helm template`
// would, offline: no cluster, so no lookup. It returns each rendered manifest by template name,
// without partials, NOTES.txt or templates that render to nothing.
func RenderChart(dir string, values map[string]any) (map[string]string, error) {
	chrt, err := loader.Load(dir)
	if err != nil {
		return nil, err
	}
	vals, err := chartutil.ToRenderValues(chrt, values, Release, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, err
	}
	for name, text := range out {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || strings.TrimSpace(stripComments(text)) == "" {
			delete(out, name)
		}
	}
	return out, nil
}

func stripComments(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// ValidateRendered checks every rendered manifest against the Kubernetes schemas, as
// ValidateKubeFile does for a file.
func ValidateRendered(v *validator.Validator, rendered map[string]string) error {
	var errs []error
	for _, name := range sortedKeys(rendered) {
		if err := validateYAML(v, name, []byte(rendered[name])); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoadRendered decodes what the chart rendered for the rules, with the Secret example of
// deploy/kubernetes as the Secret the release expects (the chart creates no Secret).
func LoadRendered(chartDir string, rendered map[string]string, secretExample string) (*Kube, error) {
	k := &Kube{Dir: chartDir}
	for _, name := range sortedKeys(rendered) {
		if err := k.decode(name, []byte(rendered[name])); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(secretExample)
	if err != nil {
		return nil, err
	}
	if err := k.decode(secretExample, data); err != nil {
		return nil, err
	}
	return k, nil
}

// Object is one Kubernetes object as plain data, for comparing two renderings.
type Object = map[string]any

// ObjectKey names an object: kind, namespace and name.
func ObjectKey(o Object) string {
	meta, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v %v/%v", o["kind"], meta["namespace"], meta["name"])
}

// RenderedObjects parses rendered manifests into objects by ObjectKey.
func RenderedObjects(rendered map[string]string) (map[string]Object, error) {
	objs := map[string]Object{}
	for _, name := range sortedKeys(rendered) {
		if err := addObjects(objs, name, []byte(rendered[name])); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

// KustomizeObjects is what `kubectl apply -k dir` applies, for the kustomization this repository
// has: its resources, with its namespace set on each and its images replaced. Any other field of
// kustomization.yaml is refused rather than ignored, so the comparison with the chart never
// passes by leaving a transformation out.
func KustomizeObjects(dir string) (map[string]Object, error) {
	data, err := os.ReadFile(filepath.Join(dir, kustomizationFile))
	if err != nil {
		return nil, err
	}
	var kz map[string]any
	if err := yaml.Unmarshal(data, &kz); err != nil {
		return nil, fmt.Errorf("%s: %w", kustomizationFile, err)
	}
	for key := range kz {
		if !slices.Contains([]string{"apiVersion", "kind", "namespace", "resources", "images"}, key) {
			return nil, fmt.Errorf("%s: %s is a transformation KustomizeObjects does not apply; teach it, or compare the chart by hand", kustomizationFile, key)
		}
	}
	var spec struct {
		Namespace string   `json:"namespace"`
		Resources []string `json:"resources"`
		Images    []struct {
			Name, NewName, NewTag string
		} `json:"images"`
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	objs := map[string]Object{}
	for _, r := range spec.Resources {
		data, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			return nil, err
		}
		found := map[string]Object{}
		if err := addObjects(found, r, data); err != nil {
			return nil, err
		}
		for _, o := range found {
			if meta, ok := o["metadata"].(map[string]any); ok && spec.Namespace != "" && o["kind"] != "Namespace" {
				meta["namespace"] = spec.Namespace
			}
			for _, c := range containers(o) {
				for _, img := range spec.Images {
					name, tag, _ := strings.Cut(fmt.Sprint(c["image"]), ":")
					if name == img.Name {
						if img.NewName != "" {
							name = img.NewName
						}
						if img.NewTag != "" {
							tag = img.NewTag
						}
						c["image"] = name + ":" + tag
					}
				}
			}
			objs[ObjectKey(o)] = o
		}
	}
	return objs, nil
}

// containers are the containers of a workload's pod template.
func containers(o Object) []map[string]any {
	spec, _ := o["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	list, _ := pod["containers"].([]any)
	var out []map[string]any
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func addObjects(into map[string]Object, name string, data []byte) error {
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		var o Object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return fmt.Errorf("%s (document %d): %w", name, i+1, err)
		}
		if len(o) == 0 {
			continue
		}
		key := ObjectKey(o)
		if _, dup := into[key]; dup {
			return fmt.Errorf("%s: %s twice", name, key)
		}
		into[key] = o
	}
	return nil
}

func sortedObjectKeys(m map[string]Object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
