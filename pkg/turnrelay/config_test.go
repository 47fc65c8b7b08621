package turnrelay

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/config"
)

const secretEnv = "SWITCHBOARD_TURND_AUTH_SECRETS=" + secretA

func leafKeys(prefix string, m map[string]any, out *[]string) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			leafKeys(key, sub, out)
			continue
		}
		*out = append(*out, key)
	}
}

// TestConfigFiles: configs/turnd.yaml names every key with its default value, and both
// shipped files load cleanly given a secret from the environment.
func TestConfigFiles(t *testing.T) {
	root := testtool.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "configs", "turnd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	leafKeys("", doc, &keys)
	sort.Strings(keys)
	if want := config.Keys(DefaultConfig()); !slices.Equal(keys, want) {
		t.Errorf("configs/turnd.yaml keys differ from Config\nyaml: %v\nwant: %v", keys, want)
	}
	prod, _, err := config.Load[Config]("turnd", []string{"--config=" + filepath.Join(root, "configs", "turnd.yaml")}, []string{secretEnv}, DefaultConfig())
	if err != nil {
		t.Fatalf("configs/turnd.yaml: %v", err)
	}
	want := DefaultConfig()
	want.Auth.Secrets = []string{secretA}
	if !reflect.DeepEqual(prod, want) {
		t.Errorf("configs/turnd.yaml values differ from DefaultConfig:\n got %+v\nwant %+v", prod, want)
	}
	dev, _, err := config.Load[Config]("turnd", []string{"--config=" + filepath.Join(root, "configs", "turnd.dev.yaml")}, []string{secretEnv}, DefaultConfig())
	if err != nil {
		t.Fatalf("configs/turnd.dev.yaml: %v", err)
	}
	if dev.Listen != "127.0.0.1:3478" || dev.Ops.Listen != "127.0.0.1:9402" || dev.Relay.IP != "127.0.0.1" ||
		!slices.Equal(dev.Peers.Allow, []string{"127.0.0.0/8"}) {
		t.Errorf("dev config: %+v", dev)
	}
}

func TestConfigProblemsNameKeys(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--peers.allow=10.0.0.0/33"}, "peers.allow"},
		{[]string{"--peers.deny=not-a-cidr"}, "peers.deny"},
		{[]string{"--relay.min_port=60000", "--relay.max_port=50000"}, "relay.max_port"},
		{[]string{"--relay.public_ip=0.0.0.0"}, "relay.public_ip"},
		{[]string{"--tls.cert=/x"}, "tls.cert"},
		{[]string{"--quotas.allocations_per_user=0"}, "quotas.allocations_per_user"},
		{[]string{"--realm="}, "realm"},
		{[]string{"--drain_timeout=-1s"}, "drain_timeout"},
		{[]string{"--drain_timeout=2h"}, "drain_timeout"},
		{[]string{"--relay.public_ip=203.0.113.1", "--relay.public_ip_file=/run/ip"}, "relay.public_ip_file"},
		{[]string{"--relay.public_ipv6=2001:db8::1", "--relay.public_ipv6_file=/run/ip6"}, "relay.public_ipv6_file"},
		{[]string{"--auth.secrets=short"}, "auth.secrets"},
	}
	for _, tt := range tests {
		env := []string{secretEnv}
		if strings.HasPrefix(tt.args[0], "--auth.secrets") {
			env = nil
		}
		_, _, err := config.Load[Config]("turnd", tt.args, env, DefaultConfig())
		var inv *config.InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want a problem naming %s", tt.args, err, tt.want)
		}
		if strings.Contains(err.Error(), "short") && tt.want == "auth.secrets" {
			t.Errorf("the error echoes the secret: %v", err)
		}
	}
}
