package turnrelay

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func TestRotationAcceptsEverySecret(t *testing.T) {
	const secretC = "test-secret-C-0123456789abcdef0123456789"
	dir := t.TempDir()
	file := filepath.Join(dir, "secrets")
	if err := os.WriteFile(file, []byte("# newest first\n"+secretB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Auth.Secrets = []string{secretA} // file secrets come first: [B, A]
	cfg.Auth.SecretsFile = file
	ts := startServer(t, cfg)

	tests := []struct {
		secret string
		want   int
	}{
		{secretA, 0}, {secretB, 0}, {secretC, 401},
	}
	for _, tt := range tests {
		user, pass := credFor(t, tt.secret, time.Now().Add(time.Hour), "rot")
		c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
		if _, code := c.allocate(); code != tt.want {
			t.Errorf("credential under secret %q…: code %d, want %d", tt.secret[:13], code, tt.want)
		}
	}

	// Rotate: C becomes newest, B is retired. A B credential seen before must not keep
	// working through the remembered key.
	userB, passB := credFor(t, secretB, time.Now().Add(2*time.Hour), "rot2")
	if _, code := dialRaw(t, "udp", ts.UDPAddr(), userB, passB).allocate(); code != 0 {
		t.Fatalf("B before rotation: %d", code)
	}
	if err := os.WriteFile(file, []byte(secretC+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.secrets.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		secret string
		want   int
	}{{secretC, 0}, {secretA, 0}, {secretB, 401}} {
		user, pass := credFor(t, tt.secret, time.Now().Add(2*time.Hour), "rot2")
		if _, code := dialRaw(t, "udp", ts.UDPAddr(), user, pass).allocate(); code != tt.want {
			t.Errorf("after rotation, secret %q…: code %d, want %d", tt.secret[:13], code, tt.want)
		}
	}
	if _, code := dialRaw(t, "udp", ts.UDPAddr(), userB, passB).allocate(); code != 401 {
		t.Errorf("remembered B credential after B was removed: code %d, want 401", code)
	}
	if n := ts.counter(t, "switchboard_turn_auth_failures_total", "reason", authIntegrity); n < 2 {
		t.Errorf("auth_failures{bad_integrity} = %v, want >= 2", n)
	}
}

func TestExpiryAndMaxSession(t *testing.T) {
	cfg := testConfig()
	cfg.Auth.MaxSession = time.Hour
	ts := startServer(t, cfg)

	// An expired credential cannot create an allocation.
	user, pass := credFor(t, secretA, ts.clock.Now().Add(-time.Second), "late")
	if _, code := dialRaw(t, "udp", ts.UDPAddr(), user, pass).allocate(); code == 0 {
		t.Fatal("expired credential allocated")
	}
	if n := ts.counter(t, "switchboard_turn_auth_failures_total", "reason", authExpired); n < 1 {
		t.Errorf("auth_failures{expired} = %v", n)
	}

	// A live one can, and its allocation may be refreshed past the credential's expiry...
	user, pass = credFor(t, secretA, ts.clock.Now().Add(5*time.Minute), "call")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	if _, code := c.allocate(); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	ts.clock.Add(30 * time.Minute)
	if _, code := c.request(stun.MethodRefresh, lifetime(10*time.Minute)); code != 0 {
		t.Fatalf("refresh after credential expiry, inside max_session: code %d", code)
	}
	if _, code := c.request(stun.MethodCreatePermission, peerAddr{startPeer(t, false).addr()}); code != 0 {
		t.Fatalf("permission after credential expiry, inside max_session: code %d", code)
	}
	// ...but not beyond auth.max_session.
	ts.clock.Add(31 * time.Minute)
	if _, code := c.request(stun.MethodRefresh, lifetime(10*time.Minute)); code != 401 {
		t.Fatalf("refresh beyond max_session: code %d, want 401", code)
	}
	if n := ts.counter(t, "switchboard_turn_auth_failures_total", "reason", authSessionLong); n != 1 {
		t.Errorf("auth_failures{session_too_long} = %v", n)
	}
}
