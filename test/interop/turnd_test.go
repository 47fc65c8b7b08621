package interop

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

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
	api := startCredapi(t, logs, []string{newSecret, oldSecret}, uris)
	apiOld := startCredapi(t, logs, []string{oldSecret}, uris)
	sensitive := []string{newSecret, oldSecret}
	ctx := t.Context()

	for _, transport := range []string{"udp", "tcp"} {
		t.Run("credapi credential over "+transport, func(t *testing.T) {
			c := fetchCredential(t, api, "username=interop-"+transport)
			sensitive = append(sensitive, c.Password)
			if err := allocateAndEcho(ctx, logs, uriAddr(t, c.URIs, transport), transport, c.Username, c.Password); err != nil {
				t.Fatalf("turnd refused credapi's credential over %s: %v", transport, err)
			}
		})
	}
	t.Run("minted with the older secret during rotation", func(t *testing.T) {
		c := fetchCredential(t, apiOld, "")
		sensitive = append(sensitive, c.Password)
		if err := allocateAndEcho(ctx, logs, uriAddr(t, c.URIs, "udp"), "udp", c.Username, c.Password); err != nil {
			t.Fatal(err)
		}
	})

	addr := relay.UDPAddr().String()
	wrongCred, _ := turncred.Static("some-other-secret-"+strings.Repeat("x", 32)).Mint(time.Now(), time.Hour, "x")
	expired, _ := turncred.Static(newSecret).Mint(time.Now().Add(-2*time.Hour), time.Hour, "late")
	good := fetchCredential(t, api, "username=tamper")
	refusals := []struct{ name, user, pass string }{
		{"wrong secret", wrongCred.Username, wrongCred.Password},
		{"expired", expired.Username, expired.Password},
		{"tampered username", strings.Replace(good.Username, "tamper", "tamperX", 1), good.Password},
		{"unpadded password", good.Username, strings.TrimRight(good.Password, "=")},
	}
	for _, r := range refusals {
		t.Run("refuses "+r.name, func(t *testing.T) {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := allocateAndEcho(c, logs, addr, "udp", r.user, r.pass)
			if err == nil {
				t.Fatalf("turnd accepted a credential with %s", r.name)
			}
			// pion/turn (turnd's base) answers a failed MESSAGE-INTEGRITY check with 400 where
			// coturn sends 401; either is a refusal by the server, not a transport failure.
			if !strings.Contains(err.Error(), "error 401") && !strings.Contains(err.Error(), "error 400") {
				t.Fatalf("want a 401/400 STUN error from turnd, got: %v", err)
			}
		})
	}
	logs.assertNoLeak(t, append(sensitive, good.Password)...)
}
