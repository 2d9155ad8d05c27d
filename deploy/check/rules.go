package check

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The names below are tapbot's: the probes its HTTP server answers, the variables it reads, and
// the files of deploy/kubernetes that are not applied as they are.
const (
	healthPath  = "/healthz"
	readyPath   = "/readyz"
	metricsPath = "/metrics"

	// httpCloseTime is what tapbot's shutdown takes after the in-flight work of
	// TAP_SHUTDOWN_TIMEOUT: up to 10 s of last replies and audit posts (bot/bot.go), then 5 s
	// for the HTTP server to close (cmd/tapbot/wiring.go).
	httpCloseTime          = 15 * time.Second
	defaultShutdownTimeout = 20 * time.Second
	defaultHTTPAddr        = ":8080"

	kustomizationFile = "kustomization.yaml"
	secretExampleFile = "secret.example.yaml"
	placeholder       = "REPLACE_ME"
)

// secretVars must come from a Secret, never a ConfigMap: they are credentials, and REDIS_URL holds
// Redis's password.
var secretVars = []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "AZURE_CLIENT_SECRET", "REDIS_URL", "TAP_ENCRYPTION_KEY"}

// fileSecretVars are the secrets tapbot reads from a file named by X_FILE (the Docker and
// Kubernetes secrets convention), so they never sit in its environment, where kubectl describe,
// docker inspect, crash dumps and every child process see them. AZURE_CLIENT_SECRET is not one:
// azidentity reads it from the environment only.
var fileSecretVars = []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "REDIS_URL", "TAP_ENCRYPTION_KEY"}

// envOnlySecret is the one secret that stays an environment variable.
const envOnlySecret = "AZURE_CLIENT_SECRET"

// requiredSecretVars are the ones tapbot cannot start without when several replicas share Redis.
// (AZURE_CLIENT_SECRET may be replaced by workload identity.)
var requiredSecretVars = []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "REDIS_URL", "TAP_ENCRYPTION_KEY"}

// KnownVars reads the variables tapbot knows from the repository's .env.example, which lists every
// one config.Load reads, plus azidentity's alternatives to a client secret. A name outside this
// set in a ConfigMap or Secret is a typo tapbot would silently ignore.
func KnownVars(envExample string) (map[string]bool, error) {
	data, err := os.ReadFile(envExample)
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`^#?\s*([A-Z][A-Z0-9_]*)=`)
	known := map[string]bool{"AZURE_CLIENT_CERTIFICATE_PATH": true, "AZURE_FEDERATED_TOKEN_FILE": true}
	// The bot reads X_FILE for each of these (config, on its own branch, which also lists them
	// in .env.example); the deployment files set them.
	for _, v := range fileSecretVars {
		known[v+"_FILE"] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if m := re.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			known[m[1]] = true
		}
	}
	if len(known) < 10 {
		return nil, fmt.Errorf("%s lists only %d variables; is it the right file?", envExample, len(known))
	}
	return known, sc.Err()
}

// Kube is what deploy/kubernetes holds, or what the Helm chart renders, decoded into the API's own
// types.
type Kube struct {
	Dir           string
	Files         []string // every YAML file, kustomization.yaml included; none for a chart
	Deployment    *appsv1.Deployment
	ConfigMap     *corev1.ConfigMap
	Secret        *corev1.Secret // secret.example.yaml: the keys the real Secret must hold
	PDB           *policyv1.PodDisruptionBudget
	Services      []*corev1.Service
	Kustomization *Kustomization // nil for a chart
}

// Kustomization is what the rules read of kustomization.yaml.
type Kustomization struct {
	Namespace string   `json:"namespace"`
	Resources []string `json:"resources"`
}

// LoadKube decodes every manifest in dir. Call ValidateKubeFile first: this reads only the fields
// the rules need and does not complain about the rest.
func LoadKube(dir string) (*Kube, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	k := &Kube{Dir: dir, Files: files}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if filepath.Base(path) == kustomizationFile {
			k.Kustomization = &Kustomization{}
			if err := yaml.Unmarshal(data, k.Kustomization); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			continue
		}
		if err := k.decode(path, data); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// decode adds the objects of one YAML stream (a file, or a template the chart rendered) that the
// rules read; name says where it came from in errors.
func (k *Kube) decode(name string, data []byte) error {
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return fmt.Errorf("%s (document %d): %w", name, i+1, err)
		}
		var dst any
		switch meta.Kind {
		case "Deployment":
			k.Deployment = &appsv1.Deployment{}
			dst = k.Deployment
		case "ConfigMap":
			k.ConfigMap = &corev1.ConfigMap{}
			dst = k.ConfigMap
		case "Secret":
			k.Secret = &corev1.Secret{}
			dst = k.Secret
		case "PodDisruptionBudget":
			k.PDB = &policyv1.PodDisruptionBudget{}
			dst = k.PDB
		case "Service":
			svc := &corev1.Service{}
			k.Services = append(k.Services, svc)
			dst = svc
		default:
			continue
		}
		if err := yaml.Unmarshal(doc, dst); err != nil {
			return fmt.Errorf("%s (document %d): %w", name, i+1, err)
		}
	}
	return nil
}

// Problems lists, one sentence each, what would make this deployment of tapbot fail or unsafe
// although every file matches its schema.
func (k *Kube) Problems(known map[string]bool) []string {
	var p problems
	if k.Deployment == nil || k.ConfigMap == nil || k.Secret == nil || k.PDB == nil {
		p.add("want a Deployment, a ConfigMap, a Secret (%s) and a PodDisruptionBudget in %s", secretExampleFile, k.Dir)
		return p
	}
	d := k.Deployment
	spec := d.Spec.Template.Spec
	podLabels := d.Spec.Template.Labels

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		p.add("Deployment %s: replicas must be at least 2, so one replica serves while the other restarts", d.Name)
	}
	if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, podLabels) {
		p.add("Deployment %s: spec.selector does not match the pod template's labels", d.Name)
	}

	i := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "tapbot" })
	if i < 0 {
		p.add("Deployment %s: no container named tapbot", d.Name)
		return p
	}
	c := spec.Containers[i]

	port, err := listenPort(k.ConfigMap.Data["TAP_HTTP_ADDR"])
	if err != nil {
		p.add("ConfigMap %s: %v", k.ConfigMap.Name, err)
	}
	if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == port }) {
		p.add("container tapbot: no containerPort %d, the port of TAP_HTTP_ADDR", port)
	}
	probe := func(name string, pr *corev1.Probe, want string) {
		switch {
		case pr == nil || pr.HTTPGet == nil:
			p.add("container tapbot: %s must be an httpGet probe of %s", name, want)
		case pr.HTTPGet.Path != want:
			p.add("container tapbot: %s asks %s, want %s", name, pr.HTTPGet.Path, want)
		case portOf(pr.HTTPGet.Port, c.Ports) != port:
			p.add("container tapbot: %s asks port %s, but tapbot listens on %d (TAP_HTTP_ADDR)", name, pr.HTTPGet.Port.String(), port)
		}
	}
	probe("readinessProbe", c.ReadinessProbe, readyPath)
	probe("livenessProbe", c.LivenessProbe, healthPath)
	if c.StartupProbe != nil {
		probe("startupProbe", c.StartupProbe, healthPath)
	}

	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" {
		p.add(`pod template: annotation prometheus.io/scrape must be "true"`)
	}
	if ann["prometheus.io/path"] != metricsPath {
		p.add("pod template: annotation prometheus.io/path must be %s", metricsPath)
	}
	if ann["prometheus.io/port"] != strconv.Itoa(int(port)) {
		p.add("pod template: annotation prometheus.io/port is %q, but tapbot listens on %d", ann["prometheus.io/port"], port)
	}

	var fromConfigMap bool
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			p.add("container tapbot: envFrom names the Secret %s, which puts every secret in the environment; mount it and set the *_FILE variables", e.SecretRef.Name)
		}
		if e.ConfigMapRef != nil && e.ConfigMapRef.Name == k.ConfigMap.Name {
			fromConfigMap = true
		}
	}
	if !fromConfigMap {
		p.add("container tapbot: envFrom must name the ConfigMap %s", k.ConfigMap.Name)
	}
	p.secretFiles(spec, c, k.Secret.Name)
	for _, v := range requiredSecretVars {
		if _, ok := k.Secret.StringData[v]; !ok {
			p.add("Secret %s: no %s", k.Secret.Name, v)
		}
	}
	for _, key := range sortedKeys(k.Secret.StringData) {
		if !strings.Contains(k.Secret.StringData[key], placeholder) {
			p.add("Secret %s: %s must be a placeholder containing %s: real secrets never go in the repository", k.Secret.Name, key, placeholder)
		}
		if !known[key] {
			p.add("Secret %s: tapbot reads no variable %s", k.Secret.Name, key)
		}
	}
	if len(k.Secret.Data) > 0 {
		p.add("Secret %s: use stringData, so the placeholders can be read", k.Secret.Name)
	}
	for _, key := range sortedKeys(k.ConfigMap.Data) {
		if slices.Contains(secretVars, key) {
			p.add("ConfigMap %s: %s is a secret and belongs in the Secret", k.ConfigMap.Name, key)
		}
		if !known[key] {
			p.add("ConfigMap %s: tapbot reads no variable %s", k.ConfigMap.Name, key)
		}
	}

	shutdown, err := duration(k.ConfigMap.Data["TAP_SHUTDOWN_TIMEOUT"], defaultShutdownTimeout)
	if err != nil {
		p.add("ConfigMap %s: TAP_SHUTDOWN_TIMEOUT: %v", k.ConfigMap.Name, err)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown+httpCloseTime {
		p.add("Deployment %s: terminationGracePeriodSeconds must exceed TAP_SHUTDOWN_TIMEOUT (%s) plus %s, or the kubelet kills in-flight approvals", d.Name, shutdown, httpCloseTime)
	}

	p.security(spec, c)

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			p.add("container tapbot: no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			p.add("container tapbot: no %s limit", r)
		}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.add("pod template: automountServiceAccountToken must be false: tapbot never calls the Kubernetes API")
	}

	if k.PDB.Spec.Selector == nil || !selects(k.PDB.Spec.Selector.MatchLabels, podLabels) {
		p.add("PodDisruptionBudget %s: its selector does not match tapbot's pods", k.PDB.Name)
	}
	if m := k.PDB.Spec.MinAvailable; m == nil || m.Type != intstr.Int || m.IntValue() < 1 ||
		(d.Spec.Replicas != nil && int32(m.IntValue()) >= *d.Spec.Replicas) {
		p.add("PodDisruptionBudget %s: minAvailable must be a number from 1 to replicas-1, or no node can ever be drained", k.PDB.Name)
	}
	for _, s := range k.Services {
		if !selects(s.Spec.Selector, podLabels) {
			p.add("Service %s: its selector does not match tapbot's pods", s.Name)
		}
	}

	if k.Kustomization != nil || len(k.Files) > 0 {
		p.kustomization(k)
	}
	return p
}

// secretFiles checks that the Secret reaches tapbot as files: a volume of it, mounted read-only,
// readable by tapbot's group and nobody else, and X_FILE naming the file of each key, with no
// secret in the environment but AZURE_CLIENT_SECRET, taken from the Secret.
func (p *problems) secretFiles(spec corev1.PodSpec, c corev1.Container, secret string) {
	vi := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == secret
	})
	if vi < 0 {
		p.add("pod template: no volume of the Secret %s, so tapbot finds no secret files", secret)
		return
	}
	vol := spec.Volumes[vi]
	mi := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == vol.Name })
	if mi < 0 {
		p.add("container tapbot: does not mount volume %s, the Secret %s", vol.Name, secret)
		return
	}
	mount := c.VolumeMounts[mi]
	if !mount.ReadOnly {
		p.add("container tapbot: must mount volume %s read-only", vol.Name)
	}
	mode := int32(0o644) // Kubernetes' default
	if vol.Secret.DefaultMode != nil {
		mode = *vol.Secret.DefaultMode
	}
	var fsGroup *int64
	if spec.SecurityContext != nil {
		fsGroup = spec.SecurityContext.FSGroup
	}
	if mode&0o007 != 0 || mode&0o040 == 0 || fsGroup == nil {
		p.add("volume %s: defaultMode %04o with fsGroup %s; want the files readable by tapbot's group only (0440 and fsGroup 65532)", vol.Name, mode, intOrUnset(fsGroup))
	}
	path := func(key string) string {
		for _, it := range vol.Secret.Items {
			if it.Key == key {
				return filepath.Join(mount.MountPath, it.Path)
			}
		}
		if len(vol.Secret.Items) > 0 {
			return "" // not projected
		}
		return filepath.Join(mount.MountPath, key)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, v := range fileSecretVars {
		if _, ok := env[v]; ok {
			p.add("container tapbot: %s is in the environment; mount it from the Secret and set %s_FILE", v, v)
		}
		e, ok := env[v+"_FILE"]
		switch want := path(v); {
		case !ok:
			p.add("container tapbot: no %s_FILE, so tapbot finds no %s", v, v)
		case want == "" || e.Value != want:
			p.add("container tapbot: %s_FILE is %q, but the Secret's key %s is mounted at %q", v, e.Value, v, want)
		}
	}
	if e, ok := env[envOnlySecret]; ok {
		switch {
		case e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil:
			p.add("container tapbot: %s must come from the Secret (secretKeyRef), never a value in the manifest", envOnlySecret)
		case e.ValueFrom.SecretKeyRef.Name != secret:
			p.add("container tapbot: %s comes from the Secret %s, not %s", envOnlySecret, e.ValueFrom.SecretKeyRef.Name, secret)
		}
	}
}

func intOrUnset(v *int64) string {
	if v == nil {
		return "unset"
	}
	return strconv.FormatInt(*v, 10)
}

func (p *problems) security(spec corev1.PodSpec, c corev1.Container) {
	pod := spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if !isTrue(sc.RunAsNonRoot) && !isTrue(pod.RunAsNonRoot) {
		p.add("runAsNonRoot must be true")
	}
	if u := firstInt(sc.RunAsUser, pod.RunAsUser); u == nil || *u == 0 {
		p.add("runAsUser must be a non-zero user ID (the image's is 65532)")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		p.add("container tapbot: readOnlyRootFilesystem must be true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.add("container tapbot: allowPrivilegeEscalation must be false")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		p.add("container tapbot: capabilities must drop ALL and add none")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.add("seccompProfile must be RuntimeDefault")
	}
}

// kustomization checks that kubectl apply -k applies every manifest but the Secret example, so a
// new file is not forgotten and the real Secret is never replaced by placeholders.
func (p *problems) kustomization(k *Kube) {
	var listed []string
	if k.Kustomization != nil {
		listed = k.Kustomization.Resources
	}
	for _, f := range k.Files {
		base := filepath.Base(f)
		switch {
		case base == kustomizationFile:
		case base == secretExampleFile:
			if slices.Contains(listed, base) {
				p.add("%s: must not list %s, or kubectl apply -k replaces the real Secret with placeholders", kustomizationFile, base)
			}
		case !slices.Contains(listed, base):
			p.add("%s: does not list %s", kustomizationFile, base)
		}
	}
	for _, r := range listed {
		if _, err := os.Stat(filepath.Join(k.Dir, r)); err != nil {
			p.add("%s: lists %s, which does not exist", kustomizationFile, r)
		}
	}
	if len(k.Files) > 0 && !slices.ContainsFunc(k.Files, func(f string) bool { return filepath.Base(f) == kustomizationFile }) {
		p.add("no %s", kustomizationFile)
	}
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// selects reports whether a non-empty label selector picks pods with these labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// listenPort reads the port of TAP_HTTP_ADDR as tapbot does (default :8080).
func listenPort(addr string) (int32, error) {
	if addr == "" {
		addr = defaultHTTPAddr
	}
	_, port, err := net.SplitHostPort(addr)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || n == 0 {
		return 0, fmt.Errorf("TAP_HTTP_ADDR %q is not :port or host:port", addr)
	}
	return int32(n), nil
}

// portOf resolves a probe's port, by number or by the name of a container port.
func portOf(p intstr.IntOrString, ports []corev1.ContainerPort) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

// duration reads a Go duration as tapbot's config does for TAP_SHUTDOWN_TIMEOUT.
func duration(v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return def, fmt.Errorf("%q is not a positive duration such as 20s", v)
	}
	return d, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

func firstInt(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
