package credapi

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/config"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

var secretEnv = "SWITCHBOARD_CREDAPI_AUTH_SECRETS=" + testSecret

// TestConfigFilesNameEveryKey: configs/credapi.yaml documents every key with the defaults, and
// both shipped files load cleanly (given a secret from the environment, as in production).
func TestConfigFilesNameEveryKey(t *testing.T) {
	root := testtool.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "configs", "credapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	yamlKeys := yamlLeafKeys(string(data))
	if want := config.Keys(DefaultConfig()); !slices.Equal(yamlKeys, want) {
		t.Errorf("configs/credapi.yaml keys differ from the config struct\nyaml: %v\nwant: %v", yamlKeys, want)
	}
	prod, _, err := config.Load[Config]("credapi", []string{"--config=" + filepath.Join(root, "configs", "credapi.yaml")}, []string{secretEnv}, DefaultConfig())
	if err != nil {
		t.Fatalf("configs/credapi.yaml: %v", err)
	}
	// Production file == defaults, except the placeholder TURN host every operator must set.
	def := DefaultConfig()
	def.Auth.Secrets = prod.Auth.Secrets
	def.ICE = prod.ICE
	if !configEqual(prod, def) {
		t.Errorf("configs/credapi.yaml differs from DefaultConfig():\n%+v\n%+v", prod, def)
	}
	dev, _, err := config.Load[Config]("credapi", []string{"--config=" + filepath.Join(root, "configs", "credapi.dev.yaml")}, []string{secretEnv}, DefaultConfig())
	if err != nil {
		t.Fatalf("configs/credapi.dev.yaml: %v", err)
	}
	if dev.Listen != "127.0.0.1:8080" || dev.Ops.Listen != "127.0.0.1:9403" || !slices.Contains(dev.ICE.URLs, "turn:127.0.0.1:3478?transport=udp") ||
		!slices.Equal(dev.Trackers, []string{"ws://127.0.0.1:8000"}) || !slices.Contains(dev.CORS.Origins, "http://localhost:3000") {
		t.Errorf("dev config does not match make run's layout: %+v", dev)
	}
}

func configEqual(a, b Config) bool { return reflect.DeepEqual(a, b) }

// yamlLeafKeys lists the dotted keys of a simple two-space-indented YAML file.
func yamlLeafKeys(doc string) []string {
	keyLine := regexp.MustCompile(`^( *)([a-z0-9_]+):(.*)$`)
	var stack []string
	var out []string
	for _, line := range strings.Split(doc, "\n") {
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		depth := len(m[1]) / 2
		stack = append(stack[:depth], m[2])
		if strings.TrimSpace(m[3]) != "" || depth > 0 && !strings.HasSuffix(line, ":") {
			out = append(out, strings.Join(stack, "."))
		} else if strings.TrimSpace(m[3]) == "" {
			// A bare "key:" is either a section or a list that follows; lists are leaves.
			out = append(out, strings.Join(stack, ".")+"\x00")
		}
	}
	// Drop sections (bare keys that have children).
	var leaves []string
	for i, k := range out {
		if name, ok := strings.CutSuffix(k, "\x00"); ok {
			if i+1 < len(out) && strings.HasPrefix(out[i+1], name+".") {
				continue
			}
			k = name
		}
		leaves = append(leaves, k)
	}
	slices.Sort(leaves)
	return leaves
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		key  string
	}{
		{"ok", func(*Config) {}, ""},
		{"no secret", func(c *Config) { c.Auth.Secrets = nil }, "auth.secrets"},
		{"short secret", func(c *Config) { c.Auth.Secrets = []string{strings.Repeat("x", 31)} }, "auth.secrets"},
		{"no turn uri", func(c *Config) { c.ICE.URLs = []string{"stun:a:3478"} }, "ice.urls"},
		{"http uri", func(c *Config) { c.ICE.URLs = []string{"http://a", "turn:a:3478"} }, "ice.urls"},
		{"bad transport", func(c *Config) { c.ICE.URLs = []string{"turn:a:3478?transport=sctp"} }, "ice.urls"},
		{"wildcard origin", func(c *Config) { c.CORS.Origins = []string{"*"} }, "cors.origins"},
		{"origin with path", func(c *Config) { c.CORS.Origins = []string{"https://a.example/app"} }, "cors.origins"},
		{"origin trailing slash", func(c *Config) { c.CORS.Origins = []string{"https://a.example/"} }, "cors.origins"},
		{"tracker http", func(c *Config) { c.Trackers = []string{"http://t.example"} }, "trackers"},
		{"short api key", func(c *Config) { c.APIKeys = []string{"short"} }, "api_keys"},
		{"ttl over max", func(c *Config) { c.TTL = 100 * 3600e9 }, "ttl"},
		{"ttl_min tiny", func(c *Config) { c.TTLMin = 1e9 }, "ttl_min"},
		{"negative rate", func(c *Config) { c.RateLimit.PerMinute = -1 }, "rate_limit.per_minute"},
		{"zero burst", func(c *Config) { c.RateLimit.Burst = 0 }, "rate_limit.burst"},
		{"tiny max_clients", func(c *Config) { c.RateLimit.MaxClients = 1 }, "rate_limit.max_clients"},
		{"ipv6 prefix", func(c *Config) { c.RateLimit.IPv6Prefix = 8 }, "rate_limit.ipv6_prefix"},
		{"negative global rate", func(c *Config) { c.RateLimit.GlobalPerSecond = -1 }, "rate_limit.global_per_second"},
		{"zero global burst", func(c *Config) { c.RateLimit.GlobalBurst = 0 }, "rate_limit.global_burst"},
		{"bad proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "trusted_proxies"},
		{"cert without key", func(c *Config) { c.TLS.Cert = "/x.pem" }, "tls.cert/tls.key"},
		{"zero connections", func(c *Config) { c.Limits.MaxConnections = 0 }, "limits.max_connections"},
		{"zero drain", func(c *Config) { c.Limits.DrainTimeout = 0 }, "limits.drain_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.set(&c)
			var p config.Problems
			c.Validate(&p)
			list := p.List()
			if tt.key == "" {
				if len(list) != 0 {
					t.Fatalf("unexpected problems: %v", list)
				}
				return
			}
			found := false
			for _, pr := range list {
				found = found || strings.HasPrefix(pr, tt.key+" (")
				if strings.Contains(pr, strings.Repeat("x", 31)) {
					t.Errorf("a problem echoes the secret: %s", pr)
				}
			}
			if !found {
				t.Fatalf("problems %v, want one for %s", list, tt.key)
			}
		})
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	s, err := New(cfg, turncred.Static(testSecret), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	_ = s
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"endpoint": true, "code": true, "reason": true}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "switchboard_credapi_") {
			t.Errorf("metric %s lacks the switchboard_credapi_ prefix", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !allowed[l.GetName()] {
					t.Errorf("metric %s has label %s; only bounded labels are allowed", mf.GetName(), l.GetName())
				}
			}
		}
	}
}
