package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// secretsDir is where compose mounts secrets in a container (/run/secrets/<name>).
const secretsDir = "/run/secrets/"

// loadCompose loads a compose file the way `docker compose` does (compose-go: schema
// validation, interpolation, cross-reference checks), with .env.example as the .env and
// every profile active, and nothing taken from this process's environment.
func loadCompose(t *testing.T, file string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(root),
		cli.WithEnvFiles(filepath.Join(root, ".env.example")),
		cli.WithDotEnv,
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

func composeProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// TestComposeLoaderRejects proves the loader is not vacuous: schema and reference errors fail.
func TestComposeLoaderRejects(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"unknown key", "services:\n  a:\n    image: x\n    portz: [\"1:1\"]\n"},
		{"undefined dependency", "services:\n  a:\n    image: x\n    depends_on: [nosuch]\n"},
		{"undefined secret", "services:\n  a:\n    image: x\n    secrets: [nosuch]\n"},
		{"wrong type", "services:\n  a:\n    image: x\n    read_only: sometimes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "compose.yml")
			if err := os.WriteFile(f, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := loadCompose(t, f); err == nil {
				t.Errorf("loaded without error:\n%s", tt.doc)
			}
		})
	}
}

// TestCompose: health checks everywhere, least privilege, limits, one shared secret for
// turnd and credapi, turnd on the host network, start order on health.
func TestCompose(t *testing.T) {
	p := composeProject(t)
	for _, name := range []string{"tracker", "turnd", "credapi", "prometheus"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	for name, s := range p.Services {
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] == "NONE" {
			t.Errorf("%s: no health check", name)
		}
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("%s: no restart policy", name)
		}
		if !s.ReadOnly {
			t.Errorf("%s: root filesystem is not read-only", name)
		}
		if !slices.Contains(s.CapDrop, "ALL") || len(s.CapAdd) > 0 {
			t.Errorf("%s: must drop ALL capabilities and add none", name)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: no-new-privileges is not set", name)
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("%s: no memory limit", name)
		}
		// A moving tag (none, or latest) gives a different image on every pull.
		if ref := s.Image; !strings.Contains(ref, "@sha256:") {
			slash := strings.LastIndex(ref, "/")
			if tag := ref[slash+1:]; !strings.Contains(tag, ":") || strings.HasSuffix(tag, ":latest") {
				t.Errorf("%s: image %q needs a version tag or a digest", name, ref)
			}
		}
		if d := daemonOfCommand(s.Command); d != "" {
			if s.User == "" || strings.HasPrefix(s.User, "0") || s.User == "root" {
				t.Errorf("%s: must run as the image's non-root user, not %q", name, s.User)
			}
			if s.HealthCheck != nil && s.HealthCheck.Test[1] != "/usr/local/bin/healthcheck" {
				t.Errorf("%s: health check must use the image's own probe, got %q", name, s.HealthCheck.Test)
			}
		}
	}
	turnd, _ := p.GetService("turnd")
	if turnd.NetworkMode != "host" {
		t.Errorf("turnd: network_mode %q, want host (relay ports and the real address)", turnd.NetworkMode)
	}
	credapi, _ := p.GetService("credapi")
	for _, dep := range []string{"turnd", "tracker"} {
		if d, ok := credapi.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("credapi: depends_on %s must wait for service_healthy", dep)
		}
	}
	prom, _ := p.GetService("prometheus")
	if !slices.Contains(prom.Profiles, "monitoring") {
		t.Errorf("prometheus must be behind the monitoring profile")
	}

	// The same compose secret reaches both, as their auth.secrets_file.
	var files []string
	for _, name := range []string{"turnd", "credapi"} {
		s, _ := p.GetService(name)
		key := "SWITCHBOARD_" + strings.ToUpper(name) + "_AUTH_SECRETS_FILE"
		v := s.Environment[key]
		if v == nil {
			t.Errorf("%s: %s is not set", name, key)
			continue
		}
		found := false
		for _, sec := range s.Secrets {
			target := sec.Target
			if target == "" {
				target = secretsDir + sec.Source
			} else if !strings.HasPrefix(target, "/") {
				target = secretsDir + target
			}
			if target == *v {
				files = append(files, sec.Source)
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %s=%s is not a mounted compose secret", name, key, *v)
		}
		if inline := s.Environment["SWITCHBOARD_"+strings.ToUpper(name)+"_AUTH_SECRETS"]; inline != nil {
			t.Errorf("%s: the secret must not be an environment value (visible in docker inspect)", name)
		}
	}
	if len(files) == 2 && files[0] != files[1] {
		t.Errorf("turnd reads secret %s, credapi %s: they must share one", files[0], files[1])
	}
	checkComposePorts(t, p)
}

func daemonOfCommand(cmd types.ShellCommand) string {
	if len(cmd) == 0 {
		return ""
	}
	switch d := filepath.Base(cmd[0]); d {
	case "tracker", "turnd", "credapi":
		return d
	}
	return ""
}

// checkComposePorts: published ports are the ports configs/ makes the daemons listen on.
func checkComposePorts(t *testing.T, p *types.Project) {
	t.Helper()
	for name, s := range p.Services {
		d := daemonOfCommand(s.Command)
		shipped, ok := shippedConfig(t, d)
		if d == "" || !ok {
			continue
		}
		v, _ := lookup(shipped, "listen")
		listen, err := portOf(v)
		if err != nil {
			t.Fatalf("configs/%s.yaml listen: %v", d, err)
		}
		ops := effectivePort(t, shipped, s, d, "ops.listen")
		if s.HealthCheck != nil && !strings.Contains(strings.Join(s.HealthCheck.Test, " "), ":"+strconv.Itoa(int(ops))+"/healthz") {
			t.Errorf("%s: health check %q does not probe the ops port %d", name, s.HealthCheck.Test, ops)
		}
		if s.NetworkMode == "host" {
			continue
		}
		published := map[uint32]bool{}
		for _, port := range s.Ports {
			published[port.Target] = true
			if port.Target == uint32(ops) && port.HostIP != "127.0.0.1" {
				t.Errorf("%s: ops port %d must be published on 127.0.0.1 only", name, ops)
			}
		}
		if !published[uint32(listen)] {
			t.Errorf("%s: listen port %d (configs/%s.yaml) is not published", name, listen, d)
		}
	}
}

// effectivePort is a key's port after the service's environment override, if any.
func effectivePort(t *testing.T, shipped map[string]any, s types.ServiceConfig, daemon, key string) int32 {
	t.Helper()
	env := "SWITCHBOARD_" + strings.ToUpper(daemon) + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	var v any
	if e := s.Environment[env]; e != nil {
		v = *e
	} else {
		v, _ = lookup(shipped, key)
	}
	port, err := portOf(v)
	if err != nil {
		t.Fatalf("%s %s: %v", s.Name, key, err)
	}
	return port
}

// TestComposeConfigsCheck starts each daemon service's command through --check-config with
// its environment (from .env.example), its bind-mounted configs and its compose secrets.
func TestComposeConfigsCheck(t *testing.T) {
	p := composeProject(t)
	secretFile := filepath.Join(t.TempDir(), "turn_secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, s := range p.Services {
		d := daemonOfCommand(s.Command)
		if d == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var pairs []string
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeBind {
					pairs = append(pairs, v.Target, v.Source)
				}
			}
			for _, sec := range s.Secrets {
				target := sec.Target
				if target == "" {
					target = secretsDir + sec.Source
				}
				pairs = append(pairs, target, secretFile)
			}
			rewrite := strings.NewReplacer(pairs...)
			var args, env []string
			for _, a := range s.Command[1:] {
				args = append(args, rewrite.Replace(a))
			}
			for k, v := range s.Environment {
				if v != nil {
					env = append(env, k+"="+rewrite.Replace(*v))
				}
			}
			checkConfig(t, d, args, env)
		})
	}
}

// TestComposePrometheusTargets: the monitoring profile scrapes every daemon's ops port on
// host loopback, where compose publishes it (or where turnd, on the host network, binds it).
func TestComposePrometheusTargets(t *testing.T) {
	p := composeProject(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yamlUnmarshal(string(data), &cfg); err != nil {
		t.Fatalf("deploy/prometheus.yml: %v", err)
	}
	targets := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = st.Labels["component"]
			}
		}
	}
	prom, _ := p.GetService("prometheus")
	if prom.NetworkMode != "host" {
		t.Fatalf("prometheus must share the host network to reach 127.0.0.1 targets")
	}
	for name, s := range p.Services {
		d := daemonOfCommand(s.Command)
		shipped, ok := shippedConfig(t, d)
		if d == "" || !ok {
			continue
		}
		ops := effectivePort(t, shipped, s, d, "ops.listen")
		host := ops // host networking: the daemon's own port
		if s.NetworkMode != "host" {
			host = 0
			for _, port := range s.Ports {
				if port.Target == uint32(ops) && port.HostIP == "127.0.0.1" {
					n, _ := strconv.Atoi(port.Published)
					host = int32(n)
				}
			}
		}
		target := "127.0.0.1:" + strconv.Itoa(int(host))
		if c, ok := targets[target]; !ok || c != name {
			t.Errorf("%s: prometheus.yml has no target %s labelled component=%s (targets: %v)", name, target, name, targets)
		}
	}
}
