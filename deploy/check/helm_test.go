package check

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir          = "../helm/tapbot"
	secretExamplePath = kubeDir + "/" + secretExampleFile
)

func render(t *testing.T, values map[string]any) map[string]string {
	t.Helper()
	out, err := RenderChart(chartDir, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return out
}

// TestHelmChartRendersTheKustomizeObjects: with its default values the chart renders exactly the
// objects kubectl apply -k deploy/kubernetes applies (but the Namespace, which must exist before
// helm install), field for field, so neither can drift from the other.
func TestHelmChartRendersTheKustomizeObjects(t *testing.T) {
	chart, err := RenderedObjects(render(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	kustomize, err := KustomizeObjects(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kustomize["Namespace <nil>/tapbot"]; !ok {
		t.Fatalf("deploy/kubernetes applies no Namespace tapbot; objects: %v", sortedObjectKeys(kustomize))
	}
	delete(kustomize, "Namespace <nil>/tapbot")
	if got, want := sortedObjectKeys(chart), sortedObjectKeys(kustomize); !slices.Equal(got, want) {
		t.Fatalf("the chart renders %v\ndeploy/kubernetes applies %v", got, want)
	}
	for key, want := range kustomize {
		if diff := cmp.Diff(want, chart[key]); diff != "" {
			t.Errorf("%s: the chart (+) differs from deploy/kubernetes (-):\n%s", key, diff)
		}
	}
}

// TestHelmChartMatchesSchemas validates what the chart renders, with its defaults and with every
// value changed, against the same Kubernetes schemas as deploy/kubernetes.
func TestHelmChartMatchesSchemas(t *testing.T) {
	v, err := NewKubeValidator()
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string]map[string]any{"defaults": nil, "changed": changedValues()} {
		rendered := render(t, values)
		if len(rendered) < 5 {
			t.Fatalf("%s: the chart rendered only %v", name, sortedKeys(rendered))
		}
		if err := ValidateRendered(v, rendered); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// changedValues sets every value the chart offers to something other than its default.
func changedValues() map[string]any {
	return map[string]any{
		"image":    map[string]any{"repository": "acr.example.net/it/tapbot", "tag": "1.4.2", "pullPolicy": "Always"},
		"replicas": 3,
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "100m", "memory": "128Mi"},
			"limits":   map[string]any{"cpu": "1", "memory": "512Mi"},
		},
		"secretName": "tapbot-from-vault",
		"config": map[string]any{
			"TAP_APPROVERS":          "S0999ZZZZ",
			"TAP_REQUESTERS":         "S0123ABCE",
			"TAP_HTTP_ADDR":          ":9090",
			"TAP_RATE_PER_REQUESTER": 20,  // a number in YAML; the ConfigMap gets a string
			"TAP_DEFAULT_LIFETIME":   nil, // left out: tapbot's default
		},
		"terminationGracePeriodSeconds": 50,
		"podDisruptionBudget":           map[string]any{"minAvailable": 2},
		"podLabels":                     map[string]any{"azure.workload.identity/use": "true"},
		"serviceAccount":                map[string]any{"annotations": map[string]any{"azure.workload.identity/client-id": "11111111-2222-3333-4444-555555555555"}},
	}
}

// TestHelmChartRules runs tapbot's rules on what the chart renders, with its defaults and with
// every value changed: both are deployments that work.
func TestHelmChartRules(t *testing.T) {
	for name, values := range map[string]map[string]any{"defaults": nil, "changed": changedValues()} {
		k, err := LoadRendered(chartDir, render(t, values), secretExamplePath)
		if err != nil {
			t.Fatal(err)
		}
		if values != nil {
			k.Secret.Name = values["secretName"].(string) // the release's own Secret, same keys
		}
		if p := k.Problems(knownVars(t)); len(p) > 0 {
			t.Errorf("%s:\n  %s", name, strings.Join(p, "\n  "))
		}
	}
}

// TestHelmValuesReachTheObjects: each value lands where values.yaml says.
func TestHelmValuesReachTheObjects(t *testing.T) {
	objs, err := RenderedObjects(render(t, changedValues()))
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadRendered(chartDir, render(t, changedValues()), secretExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	d := k.Deployment
	c := d.Spec.Template.Spec.Containers[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"image", c.Image, "acr.example.net/it/tapbot:1.4.2"},
		{"pull policy", string(c.ImagePullPolicy), "Always"},
		{"replicas", *d.Spec.Replicas, int32(3)},
		{"memory limit", c.Resources.Limits.Memory().String(), "512Mi"},
		{"cpu request", c.Resources.Requests.Cpu().String(), "100m"},
		{"Secret volume", d.Spec.Template.Spec.Volumes[0].Secret.SecretName, "tapbot-from-vault"},
		{"client secret from", c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "AZURE_CLIENT_SECRET" })].ValueFrom.SecretKeyRef.Name, "tapbot-from-vault"},
		{"config", k.ConfigMap.Data, map[string]string{"TAP_APPROVAL_CHANNEL": "C0123ABCD", "TAP_APPROVERS": "S0999ZZZZ",
			"TAP_REQUESTERS": "S0123ABCE", "TAP_HTTP_ADDR": ":9090", "TAP_RATE_PER_REQUESTER": "20",
			"AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000000", "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
			"TAP_MAX_LIFETIME": "8h", "TAP_SHUTDOWN_TIMEOUT": "20s"}},
		{"container port", c.Ports[0].ContainerPort, int32(9090)},
		{"scrape port", d.Spec.Template.Annotations["prometheus.io/port"], "9090"},
		{"Service port", k.Services[0].Spec.Ports[0].Port, int32(9090)},
		{"grace", *d.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(50)},
		{"PDB", k.PDB.Spec.MinAvailable.IntValue(), 2},
		{"pod label", d.Spec.Template.Labels["azure.workload.identity/use"], "true"},
		{"selector untouched", d.Spec.Selector.MatchLabels, map[string]string{"app.kubernetes.io/name": "tapbot"}},
		{"service account annotation", objs["ServiceAccount tapbot/tapbot"]["metadata"].(map[string]any)["annotations"],
			map[string]any{"azure.workload.identity/client-id": "11111111-2222-3333-4444-555555555555"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestHelmRejectsBadValues: each file under testdata/helm-values is a values file a user might
// write, and the chart itself, the schemas or tapbot's rules must refuse it, saying why.
func TestHelmRejectsBadValues(t *testing.T) {
	tests := map[string]string{
		"secret-in-config.yaml":   "config.SLACK_BOT_TOKEN is a secret: put it in the Secret tapbot-secrets, never in values",
		"replicas-as-string.yaml": "replicas: Invalid type. Expected: integer, given: string",
		"misspelt-value.yaml":     "Additional property replica is not allowed",
		"one-replica.yaml":        "Deployment tapbot: replicas must be at least 2, so one replica serves while the other restarts",
		"short-grace.yaml":        "Deployment tapbot: terminationGracePeriodSeconds must exceed TAP_SHUTDOWN_TIMEOUT (1m0s) plus 15s, or the kubelet kills in-flight approvals",
		"pdb-blocks-drains.yaml":  "PodDisruptionBudget tapbot: minAvailable must be a number from 1 to replicas-1, or no node can ever be drained",
		"typo-in-config.yaml":     "ConfigMap tapbot-config: tapbot reads no variable TAP_APROVERS",
	}
	files, _ := filepath.Glob("testdata/helm-values/*.yaml")
	if len(files) != len(tests) {
		t.Errorf("testdata/helm-values has %d files and the table %d: keep them in step", len(files), len(tests))
	}
	v, err := NewKubeValidator()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/helm-values", name))
			if err != nil {
				t.Fatal(err)
			}
			var values map[string]any
			if err := yaml.Unmarshal(data, &values); err != nil {
				t.Fatal(err)
			}
			var found []string
			rendered, err := RenderChart(chartDir, values)
			if err != nil {
				found = append(found, err.Error())
			} else {
				if err := ValidateRendered(v, rendered); err != nil {
					found = append(found, err.Error())
				} else if k, err := LoadRendered(chartDir, rendered, secretExamplePath); err != nil {
					found = append(found, err.Error())
				} else {
					found = append(found, k.Problems(knownVars(t))...)
				}
			}
			if !slices.ContainsFunc(found, func(f string) bool { return strings.Contains(f, want) }) {
				t.Errorf("want a refusal saying %q; got %q", want, found)
			}
		})
	}
}
