package credapi

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/daemon"
)

// TestCheckConfig: `credapi --check-config` as operators run it — OK with a secret in the
// environment, exit 2 naming auth.secrets without one, and never echoing a secret.
func TestCheckConfig(t *testing.T) {
	prod := "--config=" + filepath.Join(testtool.RepoRoot(), "configs", "credapi.yaml")
	tests := []struct {
		name   string
		env    string
		args   []string
		code   int
		output string
	}{
		{"production file with a secret", testSecret, []string{prod, "--check-config"}, 0, "config OK"},
		{"no secret", "", []string{prod, "--check-config"}, 2, "auth.secrets"},
		{"short secret", "short-secret-value", []string{prod, "--check-config"}, 2, "at least 32 bytes"},
		{"bad origin flag", testSecret, []string{prod, "--check-config", "--cors.origins=*"}, 2, "cors.origins (\"*\")"},
		{"unknown key", testSecret, []string{prod, "--check-config", "--nope=1"}, 2, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_CREDAPI_AUTH_SECRETS", tt.env)
			var out, errb bytes.Buffer
			code := daemon.Main(Spec(), tt.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tt.code || !strings.Contains(all, tt.output) {
				t.Fatalf("exit %d, output %q; want exit %d containing %q", code, all, tt.code, tt.output)
			}
			if tt.env != "" && strings.Contains(all, tt.env) {
				t.Fatal("the secret was echoed")
			}
		})
	}
}
