package turnrelay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/daemon"
)

// pionRoundTrip allocates through a pion/turn client on conn and echoes through peer.
func pionRoundTrip(t *testing.T, conn net.PacketConn, server net.Addr, peer *udpPeer) {
	t.Helper()
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "pion")
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Conn:           conn,
		Username:       user,
		Password:       pass,
		Realm:          realm,
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

func TestRunServesAndDrains(t *testing.T) {
	cfg := testConfig()
	cfg.Ops.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, "turnd", cfg.Ops.Listen, cfg, discardLogger(), nil, Run)
	}()
	// Run picks its own port; readiness is all we can see from here without plumbing.
	time.Sleep(200 * time.Millisecond) //nolint:forbidigo // startup window; shutdown is the subject
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(drainTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
