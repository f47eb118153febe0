package dashboards

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/internal/testenv"
)

// promDir holds the Prometheus configuration and alert rules.
const promDir = "../deploy/prometheus"

// needTool returns the path of a Debian prometheus package tool; it skips
// when the tool is missing, and fails under CI=true, where
// deploy/local/prometheus.sh install has put it there.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testenv.CI() {
			t.Fatalf("%s is required under CI=true (deploy/local/prometheus.sh install): %v", name, err)
		}
		t.Skipf("%s not installed (deploy/local/prometheus.sh install): %v", name, err)
	}
	return p
}

// TestAlertRules runs promtool check rules and promtool test rules on
// deploy/prometheus, and promtool check config (syntax: the token file it
// names exists only where it is deployed) on its prometheus.yml.
func TestAlertRules(t *testing.T) {
	promtool := needTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "--syntax-only", "prometheus.yml"}, // the token file exists only where it is deployed
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(promtool, args...)
			cmd.Dir = promDir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// alertRules reads the alert rules file.
func alertRules(t *testing.T) []struct{ Alert, Expr string } {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(promDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string } `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var out []struct{ Alert, Expr string }
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// TestEveryAlertIsTested: each alert of alerts.yml is evaluated by at least
// one case of alerts_test.yml, so none is checked only for syntax.
func TestEveryAlertIsTested(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(promDir, "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, m := range regexp.MustCompile(`alertname: (\w+)`).FindAllStringSubmatch(string(raw), -1) {
		tested[m[1]] = true
	}
	for _, r := range alertRules(t) {
		if !tested[r.Alert] {
			t.Errorf("alert %s has no case in alerts_test.yml", r.Alert)
		}
	}
}

// TestGrafanaProvisioning checks deploy/grafana: a ClickHouse datasource
// of the plugin's type with host, port, protocol and default database, its
// password only in secureJsonData and only from the environment; a
// Prometheus datasource; a file provider.
func TestGrafanaProvisioning(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana/provisioning/datasources/loopgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Datasources []struct {
			Type           string         `yaml:"type"`
			URL            string         `yaml:"url"`
			JSONData       map[string]any `yaml:"jsonData"`
			SecureJSONData map[string]any `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(raw, &ds); err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, d := range ds.Datasources {
		types[d.Type] = true
		if _, ok := d.JSONData["password"]; ok {
			t.Errorf("%s: password in jsonData, want it in secureJsonData only", d.Type)
		}
		if d.Type != ClickHouseType {
			continue
		}
		for _, k := range []string{"host", "port", "protocol", "defaultDatabase"} {
			if d.JSONData[k] == nil || d.JSONData[k] == "" {
				t.Errorf("ClickHouse datasource: jsonData.%s missing", k)
			}
		}
		if pw, _ := d.SecureJSONData["password"].(string); !regexp.MustCompile(`^\$\{\w+\}$`).MatchString(pw) {
			t.Errorf("ClickHouse datasource: secureJsonData.password is %q, want ${ENV_VAR}", pw)
		}
	}
	for _, want := range []string{ClickHouseType, PrometheusType} {
		if !types[want] {
			t.Errorf("no %s datasource provisioned", want)
		}
	}
	raw, err = os.ReadFile("../deploy/grafana/provisioning/dashboards/loopgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Providers []struct {
			Type    string            `yaml:"type"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(raw, &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options["path"] == "" {
		t.Errorf("got providers %+v, want one file provider with a path", prov.Providers)
	}
}
