package main

// Tests of the deployment files (Dockerfile, deploy/compose, deploy/helm). Containers cannot run
// here, so these check what can be checked without them: the chart lints and renders, every
// rendered document decodes and has the kinds expected, and every container's command, flags,
// config file and environment load through this binary's own config loader, so a renamed or
// misspelt key fails here as it would fail the pod. The compose file is checked the same way,
// and against the services and ports README names.

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/warehouse"
)

const (
	chartDir    = "../../deploy/helm/loopgate"
	composeFile = "../../deploy/compose/compose.yaml"
	// helmVersion is the Helm that deploy/helm/helm.sh builds and caches.
	helmVersion = "v3.22.0"
)

// helmBinary is the helm that `make test` passes in $LOOPGATE_HELM (deploy/helm/helm.sh path),
// else the one helm.sh cached. Missing: skip, or fail under CI=true.
func helmBinary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("LOOPGATE_HELM")
	if p == "" {
		cache := os.Getenv("LOOPGATE_CACHE")
		if cache == "" {
			if home, err := os.UserHomeDir(); err == nil {
				cache = filepath.Join(home, ".cache", "loopgate")
			}
		}
		p = filepath.Join(cache, "helm-"+helmVersion, "helm")
	}
	if _, err := os.Stat(p); err != nil {
		why := fmt.Sprintf("%v (run `deploy/helm/helm.sh install` or `make deploy-check`)", err)
		if testenv.CI() {
			t.Fatalf("helm is required under CI=true: %s", why)
		}
		t.Skipf("helm not available: %s", why)
	}
	return p
}

func helm(t *testing.T, bin string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// Helm keeps caches and a registry config in $HOME/.cache and .config: keep them in the test's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// manifest is one rendered Kubernetes document.
type manifest = map[string]any

func kindOf(m manifest) string { return str(m["kind"]) }
func nameOf(m manifest) string { return str(dig(m, "metadata", "name")) }

func str(v any) string {
	s, _ := v.(string)
	return s
}

// dig walks nested maps by key; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// decodeManifests splits a multi-document YAML stream; every document must decode.
func decodeManifests(t *testing.T, out []byte) []manifest {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var docs []manifest
	for i := 0; ; i++ {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered document %d does not decode: %v", i, err)
		}
		if m == nil {
			continue // an empty document between separators
		}
		if kindOf(m) == "" || str(m["apiVersion"]) == "" || nameOf(m) == "" {
			t.Fatalf("rendered document %d lacks apiVersion, kind or metadata.name: %v", i, m)
		}
		docs = append(docs, m)
	}
	return docs
}

// yamlPaths lists the dotted YAML paths of the fields named key anywhere in struct type rt.
func yamlPaths(rt reflect.Type, prefix, key string) []string {
	var out []string
	for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
		rt = rt.Elem()
	}
	if rt.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < rt.NumField(); i++ {
		name := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		if name == key {
			out = append(out, prefix+name)
		}
		out = append(out, yamlPaths(rt.Field(i).Type, prefix+name+".", key)...)
	}
	return out
}

// container is one container of a rendered or composed workload, with what its config check
// needs.
type container struct {
	where string // "Deployment/lg-loopgate-router", "compose service router"
	args  []string
	env   map[string]string
	// config is the text of the file --config names, as mounted.
	config string
	// ports by name → container port (Kubernetes).
	ports map[string]int
}

// checkCommand runs a container's command line through run() with --help appended: the
// subcommand must exist and every flag must parse.
func checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no command", where)
	}
	known := false
	for _, cmd := range commands() {
		known = known || cmd.name == args[0]
	}
	if !known {
		t.Fatalf("%s: command %q is not a loopgate subcommand", where, args[0])
	}
	var stderr bytes.Buffer
	if code := run(append(slices.Clone(args), "--help"), io.Discard, &stderr); code != 0 {
		t.Fatalf("%s: loopgate %s refuses its flags (exit %d): %s", where, strings.Join(args, " "), code, stderr.String())
	}
}

// checkContainer checks the container's command line (checkCommand), then loads its config
// file with its environment through loadConfig and validates it, as the process would at start.
func checkContainer(t *testing.T, c container) Config {
	t.Helper()
	checkCommand(t, c.where, c.args)
	path := filepath.Join(t.TempDir(), "loopgate.yaml")
	if err := os.WriteFile(path, []byte(c.config), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, func(k string) string { return c.env[k] })
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("%s: its config does not load: %v\n%s", c.where, err, c.config)
	}
	return cfg
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// flagValue is the value after flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if (a == flag || a == "-"+strings.TrimLeft(flag, "-")) && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// Secrets the chart is rendered with: none may appear outside the Secret.
const (
	testCHPassword   = "ch-password-5f1e"
	testMetricsToken = "metrics-token-9a2c"
	testAdminSecret  = "admin-secret-77d0"
)

// TestHelmChart lints the chart and renders it with several values files; for each rendering it
// checks the kinds, that every container's command and config load through this binary's loader
// with the container's environment, the ports and probes, the selectors of Services, PDBs, the
// HPAs and the ServiceMonitor, and that no secret leaves the Secret.
func TestHelmChart(t *testing.T) {
	bin := helmBinary(t)
	if out, err := helm(t, bin, "lint", "--strict", chartDir); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	// optimizer.standby is the config key of the standby optimizer (issue 14). Until the loader
	// knows it, the renderings that load a config run without it, and the default rendering is
	// only checked to carry it.
	paths := yamlPaths(reflect.TypeFor[Config](), "", "standby")
	standbyKnown := slices.Contains(paths, "optimizer.standby")
	switch {
	case !standbyKnown && len(paths) > 0:
		t.Errorf("the config loader's standby key is %v, but the chart writes optimizer.standby (templates/_helpers.tpl)", paths)
	case !standbyKnown:
		t.Log("the config has no optimizer.standby key yet: configs are loaded from renderings with optimizer.standby=false")
	}
	secrets := fmt.Sprintf("--set=secrets.clickhousePassword=%s,secrets.metricsToken=%s,secrets.adminTokens=ops admin %s", testCHPassword, testMetricsToken, testAdminSecret)
	tests := []struct {
		name string
		args []string
		// kinds is how many documents of each kind the rendering has.
		kinds map[string]int
		// routerKind is the router's workload kind.
		routerKind string
		// optimizers is the optimizer's replica count.
		optimizers int
	}{
		{
			name:       "defaults",
			args:       []string{secrets},
			kinds:      map[string]int{"ConfigMap": 2, "Secret": 1, "ServiceAccount": 1, "Deployment": 3, "Service": 3, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 3, "Job": 1},
			routerKind: "Deployment", optimizers: 2,
		},
		{
			name: "persistent routers, ServiceMonitor, no standby",
			args: []string{secrets, "--set=router.persistence.enabled=true,serviceMonitor.enabled=true,optimizer.standby=false"},
			kinds: map[string]int{"ConfigMap": 2, "Secret": 1, "ServiceAccount": 1, "Deployment": 2, "StatefulSet": 1, "Service": 3,
				"HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 2, "Job": 1, "ServiceMonitor": 1},
			routerKind: "StatefulSet", optimizers: 1,
		},
		{
			name:       "existing secret, no autoscaling, no migrations",
			args:       []string{"--set=secrets.create=false,secrets.existingSecret=ops-secrets,router.autoscaling.enabled=false,ingest.autoscaling.enabled=false,migrations.enabled=false,serviceAccount.create=false"},
			kinds:      map[string]int{"ConfigMap": 1, "Deployment": 3, "Service": 3, "PodDisruptionBudget": 3},
			routerKind: "Deployment", optimizers: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"template", "lg", chartDir, "--namespace", "loopgate"}, tt.args...)
			out, err := helm(t, bin, args...)
			if err != nil {
				t.Fatal(err)
			}
			docs := decodeManifests(t, out)
			got := map[string]int{}
			for _, d := range docs {
				got[kindOf(d)]++
			}
			if !reflect.DeepEqual(got, tt.kinds) {
				t.Fatalf("kinds: got %v, want %v", got, tt.kinds)
			}
			optimizers := tt.optimizers
			if tt.optimizers == 2 && !standbyKnown {
				optimizers = 1
				if !strings.Contains(string(out), "standby: true") {
					t.Fatal("the standby rendering's config lacks optimizer.standby: true")
				}
				out, err = helm(t, bin, append(args, "--set=optimizer.standby=false")...)
				if err != nil {
					t.Fatal(err)
				}
				docs = decodeManifests(t, out)
			}
			checkRendering(t, docs, tt.routerKind, optimizers)
			for _, s := range []string{testCHPassword, testMetricsToken, testAdminSecret} {
				for _, d := range docs {
					if b, _ := yaml.Marshal(d); kindOf(d) != "Secret" && bytes.Contains(b, []byte(s)) {
						t.Errorf("%s/%s holds a secret value", kindOf(d), nameOf(d))
					}
				}
			}
		})
	}

	// Checks that must be able to fail: the chart refuses what cannot work, and the loader
	// refuses a misspelt key in config.
	refused := []struct {
		name, set, want string
	}{
		{"more ingest replicas than partitions", "ingest.autoscaling.maxReplicas=12", "exceeds kafka.partitions"},
		{"ServiceMonitor without a token", "serviceMonitor.enabled=true", "metricsToken"},
		{"no brokers", "kafka.brokers=null", "kafka.brokers is required"},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := helm(t, bin, "template", "lg", chartDir, "--set", tt.set)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("helm template --set %s: got %v, want an error containing %q", tt.set, err, tt.want)
			}
		})
	}
	t.Run("a misspelt config key fails the loader", func(t *testing.T) {
		out, err := helm(t, bin, "template", "lg", chartDir, "--set=config.router.gatway_id=x,optimizer.standby=false")
		if err != nil {
			t.Fatal(err)
		}
		cm := find(decodeManifests(t, out), "ConfigMap", "lg-loopgate")
		path := filepath.Join(t.TempDir(), "loopgate.yaml")
		if err := os.WriteFile(path, []byte(str(dig(cm, "data", "loopgate.yaml"))), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadConfig(path, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "gatway_id") {
			t.Fatalf("loadConfig: got %v, want an error naming gatway_id", err)
		}
	})
}

func find(docs []manifest, kind, name string) manifest {
	for _, d := range docs {
		if kindOf(d) == kind && nameOf(d) == name {
			return d
		}
	}
	return nil
}

// checkRendering checks one rendering of the chart (release "lg").
func checkRendering(t *testing.T, docs []manifest, routerKind string, optimizers int) {
	t.Helper()
	secret := find(docs, "Secret", "lg-loopgate")
	if secret != nil {
		toks, err := admin.ParseTokensFile([]byte(str(dig(secret, "stringData", "admin-tokens"))))
		if err != nil {
			t.Fatalf("the Secret's admin-tokens: %v", err)
		}
		roles := map[string]string{}
		for _, tk := range toks {
			roles[tk.ID] = tk.Role
		}
		if want := map[string]string{"ops": "admin", "prometheus": "read"}; !reflect.DeepEqual(roles, want) {
			t.Errorf("the Secret's admin tokens: got %v, want %v", roles, want)
		}
	}
	workloads := map[string]manifest{} // component → workload
	for _, d := range docs {
		switch kindOf(d) {
		case "Deployment", "StatefulSet", "Job":
			comp := str(dig(d, "spec", "template", "metadata", "labels", "app.kubernetes.io/component"))
			workloads[comp] = d
			checkPod(t, docs, d, secret)
		}
	}
	for comp, kind := range map[string]string{"router": routerKind, "ingest": "Deployment", "optimizer": "Deployment"} {
		w := workloads[comp]
		if w == nil || kindOf(w) != kind {
			t.Fatalf("%s: got workload %v, want a %s", comp, kindOf(w), kind)
		}
		if p := find(docs, "PodDisruptionBudget", nameOf(w)); p != nil && !selects(dig(p, "spec", "selector", "matchLabels"), w) {
			t.Errorf("PodDisruptionBudget %s selects no pod of %s", nameOf(p), nameOf(w))
		}
		svc := find(docs, "Service", nameOf(w))
		if svc == nil || !selects(dig(svc, "spec", "selector"), w) {
			t.Errorf("%s: no Service selecting its pods", nameOf(w))
		}
		if h := find(docs, "HorizontalPodAutoscaler", nameOf(w)); h != nil {
			ref := dig(h, "spec", "scaleTargetRef")
			if str(dig(ref, "kind")) != kindOf(w) || str(dig(ref, "name")) != nameOf(w) {
				t.Errorf("HPA %s targets %v, want %s/%s", nameOf(h), ref, kindOf(w), nameOf(w))
			}
		}
	}
	if got, _ := dig(workloads["optimizer"], "spec", "replicas").(int); got != optimizers {
		t.Errorf("optimizer replicas: got %v, want %d", dig(workloads["optimizer"], "spec", "replicas"), optimizers)
	}
	if h := find(docs, "HorizontalPodAutoscaler", "lg-loopgate-ingest"); h != nil {
		var external bool
		for _, m := range list(dig(h, "spec", "metrics")) {
			external = external || str(dig(m, "external", "metric", "name")) == "loopgate_ingest_consumer_lag"
		}
		if !external {
			t.Error("the ingest HPA does not scale on loopgate_ingest_consumer_lag")
		}
	}
	if sm := find(docs, "ServiceMonitor", "lg-loopgate"); sm != nil {
		for _, comp := range []string{"router", "ingest", "optimizer"} {
			svc := find(docs, "Service", "lg-loopgate-"+comp)
			if !selectsService(sm, svc) {
				t.Errorf("the ServiceMonitor does not select Service %s", nameOf(svc))
			}
		}
		key := str(dig(list(dig(sm, "spec", "endpoints"))[0], "authorization", "credentials", "key"))
		if _, ok := dig(secret, "stringData", key).(string); !ok {
			t.Errorf("the ServiceMonitor's token key %q is not in the Secret", key)
		}
	}
}

// selects reports whether the label selector matches the workload's pod labels.
func selects(selector any, w manifest) bool {
	sel, _ := selector.(map[string]any)
	labels, _ := dig(w, "spec", "template", "metadata", "labels").(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func selectsService(sm, svc manifest) bool {
	labels, _ := dig(svc, "metadata", "labels").(map[string]any)
	for k, v := range dig(sm, "spec", "selector", "matchLabels").(map[string]any) {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range list(dig(sm, "spec", "selector", "matchExpressions")) {
		if !slices.Contains(list(dig(e, "values")), labels[str(dig(e, "key"))]) {
			return false
		}
	}
	for _, p := range list(dig(svc, "spec", "ports")) {
		if str(dig(p, "name")) == "admin" {
			return true
		}
	}
	return false
}

// checkPod checks every container of a workload: its command and config through the loader,
// the listen ports against the container ports, the mounts of data_dir and the tokens file,
// the probes of long-running containers, and the securityContext.
func checkPod(t *testing.T, docs []manifest, w manifest, secret manifest) {
	t.Helper()
	pod := dig(w, "spec", "template", "spec")
	volumes := map[string]any{}
	for _, v := range list(dig(pod, "volumes")) {
		volumes[str(dig(v, "name"))] = v
	}
	if kindOf(w) == "StatefulSet" {
		for _, c := range list(dig(w, "spec", "volumeClaimTemplates")) {
			volumes[str(dig(c, "metadata", "name"))] = c
		}
	}
	if dig(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s/%s: pods may run as root", kindOf(w), nameOf(w))
	}
	cs := append(list(dig(pod, "initContainers")), list(dig(pod, "containers"))...)
	for _, raw := range cs {
		where := fmt.Sprintf("%s/%s container %s", kindOf(w), nameOf(w), str(dig(raw, "name")))
		c := container{where: where, env: map[string]string{}, ports: map[string]int{}}
		for _, a := range list(dig(raw, "args")) {
			c.args = append(c.args, fmt.Sprint(a))
		}
		for _, e := range list(dig(raw, "env")) {
			name := str(dig(e, "name"))
			if ref := dig(e, "valueFrom", "secretKeyRef"); ref != nil {
				c.env[name] = "from-secret"
				if secret != nil && dig(ref, "optional") != true {
					if _, ok := dig(secret, "stringData", str(dig(ref, "key"))).(string); !ok {
						t.Errorf("%s: env %s names Secret key %v, which the Secret lacks", where, name, dig(ref, "key"))
					}
				}
				continue
			}
			c.env[name] = str(dig(e, "value"))
		}
		for _, p := range list(dig(raw, "ports")) {
			c.ports[str(dig(p, "name"))], _ = dig(p, "containerPort").(int)
		}
		// mounts: path → volume
		mounts := map[string]any{}
		cfgPath := flagValue(c.args, "--config")
		for _, m := range list(dig(raw, "volumeMounts")) {
			mp := str(dig(m, "mountPath"))
			v := volumes[str(dig(m, "name"))]
			if v == nil {
				t.Fatalf("%s: mounts volume %v, which the pod lacks", where, dig(m, "name"))
			}
			mounts[mp] = v
			if mp == cfgPath {
				cm := find(docs, "ConfigMap", str(dig(v, "configMap", "name")))
				if cm == nil {
					t.Fatalf("%s: --config %s is not a mounted ConfigMap", where, cfgPath)
				}
				c.config = str(dig(cm, "data", str(dig(m, "subPath"))))
			}
		}
		if c.config == "" {
			t.Fatalf("%s: --config %q is not mounted from a ConfigMap", where, cfgPath)
		}
		cfg := checkContainer(t, c)
		if got := port(t, cfg.Admin.Addr); got != c.ports["admin"] && c.args[0] != "migrate" && c.args[0] != "topics" {
			t.Errorf("%s: admin.addr port %d, container port admin %d", where, got, c.ports["admin"])
		}
		if c.args[0] == "router" {
			longest := cfg.Router.RequestTimeout
			for _, cc := range cfg.Router.Capabilities {
				longest = max(longest, cc.RequestTimeout)
			}
			if grace, _ := dig(pod, "terminationGracePeriodSeconds").(int); time.Duration(grace)*time.Second <= longest {
				t.Errorf("%s: terminationGracePeriodSeconds %d does not let the longest request (%v) finish", where, grace, longest)
			}
			if got := port(t, cfg.RouterAddr); got != c.ports["http"] {
				t.Errorf("%s: router_addr port %d, container port http %d", where, got, c.ports["http"])
			}
			if mounts[cfg.DataDir] == nil {
				t.Errorf("%s: data_dir %s (spill and journal) is not a mounted volume", where, cfg.DataDir)
			}
		}
		if tf := cfg.Admin.TokensFile; tf != "" {
			v := mounts[filepath.Dir(tf)]
			if v == nil || dig(v, "secret") == nil {
				t.Errorf("%s: admin.tokens_file %s is not in a mounted Secret", where, tf)
			} else if secret != nil {
				if _, ok := dig(secret, "stringData", filepath.Base(tf)).(string); !ok {
					t.Errorf("%s: the Secret has no key %s for admin.tokens_file", where, filepath.Base(tf))
				}
			}
		}
		if kindOf(w) != "Job" {
			for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
				if got := dig(raw, probe, "httpGet", "path"); got != path || dig(raw, probe, "httpGet", "port") != "admin" {
					t.Errorf("%s: %s %v on port %v, want %s on admin", where, probe, got, dig(raw, probe, "httpGet", "port"), path)
				}
			}
			if dig(raw, "resources", "requests") == nil {
				t.Errorf("%s: no resource requests", where)
			}
		}
		if dig(raw, "securityContext", "readOnlyRootFilesystem") != true || mounts["/tmp"] == nil {
			t.Errorf("%s: want a read-only root filesystem with /tmp mounted", where)
		}
	}
}

// composeFileT is the part of a compose file the test reads.
type composeFileT struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Profiles    []string          `yaml:"profiles"`
		NetworkMode string            `yaml:"network_mode"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// composeVar replaces ${VAR:?message} and ${VAR:-default} with a value the way compose would,
// with every required variable set to a placeholder.
var composeVar = regexp.MustCompile(`\$\{([A-Z_]+)(:[-?])([^}]*)\}`)

func interpolate(s string) string {
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		p := composeVar.FindStringSubmatch(m)
		if p[2] == ":-" {
			return p[3]
		}
		return "placeholder-" + strings.ToLower(p[1])
	})
}

// readmeDeployPorts is what README's Deploy section names: `service` — `127.0.0.1:PORT`.
var readmeDeployPorts = regexp.MustCompile("`([a-z-]+)` — `127\\.0\\.0\\.1:([0-9]+)`")

// TestComposeFile parses deploy/compose/compose.yaml and checks: the services and published
// ports against README's Deploy section (both ways), every mounted file of the repository
// exists, every loopgate container's command and mounted config load through the loader with
// its environment and listen on the ports it publishes, and the demo fleet's orchestrators
// and load keys are the ones the config lists.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFileT
	if err := yaml.Unmarshal([]byte(interpolate(string(raw))), &cf); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	for _, s := range []string{"kafka", "clickhouse", "prometheus", "grafana", "router", "ingest", "optimizer", "optimizer-standby", "topics", "migrate", "fleet", "load"} {
		if _, ok := cf.Services[s]; !ok {
			t.Errorf("compose file has no service %s", s)
		}
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Deploy\n")
	if !ok {
		t.Fatal("README has no ## Deploy section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	named := map[string]string{} // host port → service
	for _, m := range readmeDeployPorts.FindAllStringSubmatch(section, -1) {
		named[m[2]] = m[1]
	}
	if len(named) == 0 {
		t.Fatal("README's Deploy section names no service port")
	}
	published := map[string]string{}
	for name, s := range cf.Services {
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("service %s publishes %q: want 127.0.0.1:HOST:CONTAINER", name, p)
				continue
			}
			published[parts[1]] = name
		}
	}
	if !reflect.DeepEqual(named, published) {
		t.Errorf("published ports (host port → service): compose %v, README's Deploy section %v", published, named)
	}

	var loopgateServices int
	configs := map[string]Config{} // service → its loaded config
	for _, name := range slices.Sorted(maps.Keys(cf.Services)) {
		s := cf.Services[name]
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(filepath.Dir(composeFile), src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, which the file does not declare", name, src)
			}
		}
		if !strings.HasPrefix(s.Image, "loopgate:") {
			continue
		}
		loopgateServices++
		where := "compose service " + name
		cfgPath := flagValue(s.Command, "--config")
		if cfgPath == "" { // fleet and load read no config
			checkCommand(t, where, s.Command)
			continue
		}
		c := container{where: where, args: s.Command, env: s.Environment}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == cfgPath {
				b, err := os.ReadFile(filepath.Join(filepath.Dir(composeFile), parts[0]))
				if err != nil {
					t.Fatal(err)
				}
				c.config = string(b)
			}
		}
		if c.config == "" {
			t.Fatalf("%s: --config %q is not mounted from the repository", where, cfgPath)
		}
		cfg := checkContainer(t, c)
		configs[name] = cfg
		for _, p := range s.Ports {
			cport, _ := strconv.Atoi(p[strings.LastIndex(p, ":")+1:])
			if cport != port(t, cfg.Admin.Addr) && (s.Command[0] != "router" || cport != port(t, cfg.RouterAddr)) {
				t.Errorf("%s publishes container port %d, on which it does not listen (admin %s, router %s)", where, cport, cfg.Admin.Addr, cfg.RouterAddr)
			}
		}
	}
	if loopgateServices < 7 {
		t.Errorf("got %d loopgate services, want topics, migrate, router, ingest, optimizer, fleet and load", loopgateServices)
	}
	// Two optimizers publish one policy only as standbys sharing the lease.
	var optimizers []string
	for name, cfg := range configs {
		if cf.Services[name].Command[0] == "optimizer" {
			optimizers = append(optimizers, name)
			if !cfg.Optimizer.Standby {
				defer t.Errorf("compose service %s is one of several optimizers without optimizer.standby", name)
			}
		}
	}
	if len(optimizers) < 2 {
		t.Errorf("optimizer services %v: want the optimizer and its standby", optimizers)
	}
	// The demo: fleet and load share the router's network namespace.
	rcfg, ok := configs["router"]
	if !ok {
		t.Fatal("no router config")
	}
	for _, name := range []string{"fleet", "load"} {
		if s := cf.Services[name]; s.NetworkMode != "service:router" {
			t.Errorf("%s runs in network %q, want the router's (service:router)", name, s.NetworkMode)
		}
	}
	checkDemoFleet(t, cf.Services["fleet"].Command, rcfg)
	if target := flagValue(cf.Services["load"].Command, "--target"); port(t, strings.TrimPrefix(target, "http://")) != port(t, rcfg.RouterAddr) {
		t.Errorf("load --target %s does not reach the router on %s", target, rcfg.RouterAddr)
	}
}

// checkDemoFleet checks that the config's orchestrators are the scenario's fleet at
// 127.0.0.1:base-port+i (the fleet shares the router's network namespace), and that the
// router accepts the load's keys, sim-key-<client id>.
func checkDemoFleet(t *testing.T, args []string, cfg Config) {
	t.Helper()
	sc, err := loadScenario(flagValue(args, "--scenario"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := strconv.Atoi(flagValue(args, "--base-port"))
	if err != nil {
		t.Fatalf("fleet --base-port: %v", err)
	}
	if len(cfg.Orchestrators) != len(sc.Orchestrators) {
		t.Fatalf("config lists %d orchestrators, the scenario's fleet has %d", len(cfg.Orchestrators), len(sc.Orchestrators))
	}
	for i, o := range sc.Orchestrators {
		got := cfg.Orchestrators[i]
		if want := fmt.Sprintf("http://127.0.0.1:%d", base+i); got.ID != o.ID || got.URL != want {
			t.Errorf("orchestrator %d: config %s at %s, fleet %s at %s", i, got.ID, got.URL, o.ID, want)
		}
	}
	hashes := map[string]bool{}
	for _, k := range cfg.Router.APIKeys {
		hashes[strings.ToLower(k.SHA256)] = true
	}
	for _, c := range sc.Clients {
		sum := sha256.Sum256([]byte("sim-key-" + c.ID))
		if !hashes[hex.EncodeToString(sum[:])] {
			t.Errorf("the router does not accept the load's key for client %s", c.ID)
		}
	}
}

// TestDockerfile checks the Dockerfile's promises that a build would keep: the default image's
// binary is built static (CGO_ENABLED=0 -tags nochdb), both images run as a non-root user, and
// the libchdb it fetches is the release the embedded backend is built against.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "-tags nochdb", "ARG CHDB_NPM_VERSION=" + warehouse.ChdbVersion, "AS chdb", "AS static"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// Every final stage (each FROM after the build stages) sets a numeric non-root USER.
	stages := strings.Split(df, "\nFROM ")[1:]
	for _, st := range stages {
		if !strings.Contains(st, "ENTRYPOINT") {
			continue // a build stage
		}
		m := regexp.MustCompile(`\nUSER ([0-9]+)`).FindStringSubmatch(st)
		if m == nil || m[1] == "0" {
			t.Errorf("final stage %q does not run as a numeric non-root USER", strings.SplitN(st, "\n", 2)[0])
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(stages[len(stages)-1][:strings.Index(stages[len(stages)-1], "\n")]), "AS static") {
		t.Error("the default (last) stage is not the static image")
	}
	// COPY . . must not carry local state or the compose secrets into the build.
	ign, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".var", "bin", "**/.env"} {
		if !slices.Contains(strings.Split(string(ign), "\n"), want) {
			t.Errorf(".dockerignore lacks %q", want)
		}
	}
}

// TestStaticBuild builds the binary as the default image does (CGO_ENABLED=0 -tags nochdb) and
// checks that it is static (no ELF interpreter, no shared libraries) and that the embedded
// backend says why it is unavailable instead of failing to load.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "loopgate")
	cmd := exec.Command("go", "build", "-tags", "nochdb", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nochdb: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the nochdb binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the nochdb binary needs shared libraries %v", libs)
	}
	mig := exec.Command(bin, "migrate", "--data-dir", t.TempDir())
	// An existing file as the library, so the embedded backend gets as far as binding it.
	mig.Env = append(os.Environ(), "LOOPGATE_CHDB_LIB="+bin)
	out, err := mig.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nochdb") {
		t.Errorf("migrate on the embedded backend: got %v %s, want a failure naming the nochdb build", err, out)
	}
}
