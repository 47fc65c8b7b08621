package tracker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/config"
)

func TestConfigFileNamesEveryKeyAndLoads(t *testing.T) {
	path := filepath.Join(testtool.RepoRoot(), "configs", "tracker.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys(DefaultConfig()) {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(string(data), leaf+":") {
			t.Errorf("configs/tracker.yaml does not document key %s", k)
		}
	}
	cfg, _, err := config.Load[Config]("tracker", []string{"--config", path}, nil, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.Listen != def.Listen || cfg.Limits != def.Limits || cfg.AnnounceInterval != def.AnnounceInterval {
		t.Fatalf("configs/tracker.yaml differs from the built-in defaults: %+v", cfg)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{"defaults", nil, nil, ""},
		{"env override", nil, []string{"SWITCHBOARD_TRACKER_LISTEN=127.0.0.1:9000"}, ""},
		{"unknown env key", nil, []string{"SWITCHBOARD_TRACKER_NOPE=1"}, "SWITCHBOARD_TRACKER_NOPE"},
		{"bad listen", []string{"--listen=nope"}, nil, "listen (\"nope\")"},
		{"bad level", []string{"--log.level=loud"}, nil, "log.level"},
		{"tls half", []string{"--tls.cert=/x"}, nil, "tls.cert/tls.key"},
		{"bad proxy", []string{"--trusted_proxies=10.0.0.0/8,bogus"}, nil, "trusted_proxies (\"bogus\")"},
		{"timeout too short", []string{"--announce_interval=200s"}, nil, "peer_timeout"},
		{"zero limit", []string{"--limits.connections=0"}, nil, "limits.connections (0)"},
		{"wildcard origin", []string{"--origins=*"}, nil, "origins (*)"},
		{"not a number", []string{"--limits.connections=lots"}, nil, "limits.connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := config.Load[Config]("tracker", tt.args, tt.env, DefaultConfig())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
