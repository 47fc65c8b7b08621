package interop

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
	"github.com/switchboard-p2p/switchboard/pkg/turnrelay"
)

// startTurnd runs Switchboard's relay on loopback ephemeral ports with loopback peers allowed,
// logging at debug level into logs (scanned like credapi's).
func startTurnd(t *testing.T, logs *logSink, secrets ...string) *turnrelay.Server {
	t.Helper()
	cfg := turnrelay.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Realm = "switchboard.test"
	cfg.UDP.Sockets = 1
	cfg.Relay.IP = "127.0.0.1"
	cfg.Peers.Allow = []string{"127.0.0.0/8"}
	cfg.Auth.Secrets = secrets
	cfg.Quotas.BandwidthBytesPerSecond = 0
	srv, err := turnrelay.New(cfg, turnrelay.Deps{
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: prometheus.NewRegistry(),
		Secrets:  turncred.Static(secrets...),
	})
	if err != nil {
		t.Fatalf("turnrelay.New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestTurndAcceptsCredapiCredentials: the same proof as for coturn, against turnd.
func TestTurndAcceptsCredapiCredentials(t *testing.T) {
	newSecret := "interop-new-secret-" + strings.Repeat("N", 32)
	oldSecret := "interop-old-secret-" + strings.Repeat("O", 32)
	logs := &logSink{}
	relay := startTurnd(t, logs, newSecret, oldSecret)
	uris := []string{
		fmt.Sprintf("stun:%s", relay.UDPAddr()),
		fmt.Sprintf("turn:%s?transport=udp", relay.UDPAddr()),
		fmt.Sprintf("turn:%s?transport=tcp", relay.TCPAddr()),
	}
	checkCredentials(t, credentialCase{
		server:    "turnd",
		relayAddr: relay.UDPAddr().String(),
		// turnd answers a refused credential with 401 as coturn does (stock pion sends 400).
		refusals:  []string{"error 401"},
		newSecret: newSecret,
		api:       startCredapi(t, logs, []string{newSecret, oldSecret}, uris),
		apiOld:    startCredapi(t, logs, []string{oldSecret}, uris),
		logs:      logs,
		sensitive: []string{newSecret, oldSecret},
	})
}
