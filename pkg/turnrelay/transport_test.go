package turnrelay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/daemon"
)

// pionRoundTrip allocates through a pion/turn client on conn and echoes through peer.
func pionRoundTrip(t *testing.T, conn net.PacketConn, server net.Addr, peer *udpPeer) {
	t.Helper()
	pionRoundTripFamily(t, conn, server, 0, peer)
}

// pionRoundTripFamily is pionRoundTrip asking for a relay of family fam (0: not asking);
// the relay must be of the peer's family.
func pionRoundTripFamily(t *testing.T, conn net.PacketConn, server net.Addr, fam turn.RequestedAddressFamily, peer *udpPeer) {
	t.Helper()
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "pion")
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr:         server.String(),
		TURNServerAddr:         server.String(),
		Conn:                   conn,
		Username:               user,
		Password:               pass,
		Realm:                  realm,
		RequestedAddressFamily: fam,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer func() { _ = relay.Close() }()
	if got, want := relay.LocalAddr().(*net.UDPAddr).IP.To4() == nil, peer.addr().IP.To4() == nil; got != want {
		t.Fatalf("relay %v is not of the peer %v's family", relay.LocalAddr(), peer.addr())
	}
	buf := make([]byte, 1500)
	// The first writes go as Send indications while pion binds a channel; later ones
	// as ChannelData, so both paths are exercised.
	for i := range 30 {
		// pion's STUNConn cannot frame a ChannelData message shorter than 9 bytes on a
		// stream (it waits for more), so payloads here are longer than 4 bytes.
		msg := []byte(fmt.Sprintf("message-%d", i))
		if _, err := relay.WriteTo(msg, peer.addr()); err != nil {
			t.Fatal(err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, from, err := relay.ReadFrom(buf)
		if err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
		if string(buf[:n]) != string(msg) || from.String() != peer.addr().String() {
			t.Fatalf("round trip %d: got %q from %v", i, buf[:n], from)
		}
		time.Sleep(10 * time.Millisecond) //nolint:forbidigo // pace so the channel binding completes midway
	}
}

func TestPionClientUDP(t *testing.T) {
	ts := startServer(t, testConfig())
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pionRoundTrip(t, conn, ts.UDPAddr(), startPeer(t, true))
}

func TestPionClientTCP(t *testing.T) {
	ts := startServer(t, testConfig())
	c, err := net.Dial("tcp", ts.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	pionRoundTrip(t, turn.NewSTUNConn(c), ts.TCPAddr(), startPeer(t, true))
	waitFor(t, "TCP connection counted", func() bool {
		return ts.counter(t, "switchboard_turn_tcp_connections_active") == 1
	})
}

func TestTCPConnectionLimitsAndDeadlines(t *testing.T) {
	cfg := testConfig()
	cfg.TCP.MaxConnectionsPerIP = 2
	cfg.TCP.FirstMessageTimeout = 200 * time.Millisecond
	ts := startServer(t, cfg)
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ts.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		conns = append(conns, c)
	}
	// The third is closed at accept; the first two are closed for saying nothing.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d: read succeeded, want close", i)
		} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("connection %d still open after first_message_timeout", i)
		}
	}
	if n := ts.counter(t, "switchboard_turn_tcp_connections_refused_total", "reason", connPerIP); n != 1 {
		t.Errorf("tcp refused{per_ip_limit} = %v", n)
	}
	waitFor(t, "connections released", func() bool {
		return ts.counter(t, "switchboard_turn_tcp_connections_active") == 0
	})
}

func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testtool.WriteCert(t, certFile, keyFile, cn)
	return certFile, keyFile
}

func TestPionClientTLSWithReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "first")
	certs, err := daemon.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.TLS = TLS{Listen: "127.0.0.1:0", Cert: certFile, Key: keyFile}
	ts := startServer(t, cfg, func(d *Deps) { d.TLS = certs.TLSConfig() })

	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", ts.TLSAddr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test cert
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("certificate %q", cn)
	}
	pionRoundTrip(t, turn.NewSTUNConn(c), ts.TLSAddr(), startPeer(t, true))

	writeCert(t, dir, "second")
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	c2 := dial()
	defer func() { _ = c2.Close() }()
	if cn := c2.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Fatalf("after reload: certificate %q, want second", cn)
	}
}

// TestRunDrainTimeout: after cancel, Run waits for live allocations up to drain_timeout,
// returns as soon as the last one ends, and with 0 closes at once.
func TestRunDrainTimeout(t *testing.T) {
	tests := []struct {
		name     string
		drain    time.Duration
		release  bool // the client deletes its allocation once the drain started
		min, max time.Duration
	}{
		{"zero closes at once", 0, false, 0, 2 * time.Second},
		{"held allocation waits for the timeout", 1500 * time.Millisecond, false, 1500 * time.Millisecond, 5 * time.Second},
		{"returns when the last allocation ends", time.Hour, true, 0, 5 * time.Second},
	}
	udpRE := regexp.MustCompile(`udp=(127\.0\.0\.1:\d+)`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Ops.Listen = "127.0.0.1:0"
			cfg.TCP.Enabled = false
			cfg.DrainTimeout = tt.drain
			logs := &syncBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- daemon.Serve(ctx, "turnd", cfg.Ops.Listen, cfg, slog.New(slog.NewTextHandler(logs, nil)), nil, Run)
			}()
			var addr string
			waitFor(t, "Run to log its UDP address", func() bool {
				m := udpRE.FindStringSubmatch(logs.String())
				if m != nil {
					addr = m[1]
				}
				return m != nil
			})
			user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "drain")
			c := dialRaw(t, "udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)), user, pass)
			if _, code := c.allocate(); code != 0 {
				t.Fatalf("allocate: code %d", code)
			}
			start := time.Now()
			cancel()
			if tt.release {
				waitFor(t, "the drain to start", func() bool { return strings.Contains(logs.String(), "draining") })
				if _, code := c.request(stun.MethodRefresh, lifetime(0)); code != 0 {
					t.Fatalf("Refresh lifetime 0: code %d", code)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(tt.max + 5*time.Second):
				t.Fatal("Run did not return after cancel")
			}
			if took := time.Since(start); took < tt.min || took > tt.max {
				t.Errorf("Run returned %v after cancel, want %v–%v", took, tt.min, tt.max)
			}
		})
	}
}

// TestTCPConnectionCapSpansListeners: tcp.max_connections counts TCP and TLS clients
// together, not per listener.
func TestTCPConnectionCapSpansListeners(t *testing.T) {
	cfg := testConfig()
	cfg.TCP.MaxConnections = 1
	ts, dialers := startTCPServer(t, cfg)
	held := dialers["tls"](t) // the handshake completes, so the slot is taken
	defer func() { _ = held.Close() }()
	c := dialers["tcp"](t)
	defer func() { _ = c.Close() }()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a TCP client beyond tcp.max_connections (held by a TLS client) was served")
	}
	if n := ts.counter(t, "switchboard_turn_tcp_connections_refused_total", "reason", connTotal); n != 1 {
		t.Errorf("tcp refused{%s} = %v, want 1", connTotal, n)
	}
}
