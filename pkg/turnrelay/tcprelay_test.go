package turnrelay

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"golang.org/x/sys/unix"
)

// tcpConfig is testConfig with RFC 6062 allocations on.
func tcpConfig() Config {
	cfg := testConfig()
	cfg.Relay.TCPAllocations = true
	return cfg
}

func transportTCP() attr { return attr{stun.AttrRequestedTransport, []byte{6, 0, 0, 0}} }

// tcpEchoPeer is a local TCP server standing for a remote peer: it echoes every connection.
type tcpEchoPeer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startTCPPeer(t *testing.T) *tcpEchoPeer { return startTCPPeerAt(t, "tcp4", "127.0.0.1:0") }

func startTCPPeerAt(t *testing.T, network, addr string) *tcpEchoPeer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpEchoPeer{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c); _ = c.Close() })
		}
	})
	return p
}

func (p *tcpEchoPeer) addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

// tlsTCPConn gives a TLS client connection the methods pion's TCP allocation wants of a
// data connection.
type tlsTCPConn struct {
	*tls.Conn
	tcp *net.TCPConn
}

func (c tlsTCPConn) CloseRead() error                         { return c.tcp.CloseRead() }
func (c tlsTCPConn) CloseWrite() error                        { return c.Conn.CloseWrite() }
func (c tlsTCPConn) ReadFrom(r io.Reader) (int64, error)      { return io.Copy(c.Conn, r) }
func (c tlsTCPConn) SetLinger(sec int) error                  { return c.tcp.SetLinger(sec) }
func (c tlsTCPConn) SetKeepAlive(on bool) error               { return c.tcp.SetKeepAlive(on) }
func (c tlsTCPConn) SetKeepAlivePeriod(d time.Duration) error { return c.tcp.SetKeepAlivePeriod(d) }
func (c tlsTCPConn) SetNoDelay(on bool) error                 { return c.tcp.SetNoDelay(on) }
func (c tlsTCPConn) SetWriteBuffer(n int) error               { return c.tcp.SetWriteBuffer(n) }
func (c tlsTCPConn) SetReadBuffer(n int) error                { return c.tcp.SetReadBuffer(n) }

// streamDialer opens a connection to the server's TCP or TLS listener.
type streamDialer func(t *testing.T) net.Conn

func plainDialer(ts *testServer) streamDialer {
	return func(t *testing.T) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ts.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func tlsDialer(ts *testServer) streamDialer {
	return func(t *testing.T) net.Conn {
		t.Helper()
		raw, err := net.Dial("tcp", ts.TLSAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test cert
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		return tlsTCPConn{Conn: c, tcp: raw.(*net.TCPConn)}
	}
}

// startTCPServer serves TCP and TLS with cfg.
func startTCPServer(t *testing.T, cfg Config) (*testServer, map[string]streamDialer) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "turnd")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS = TLS{Listen: "127.0.0.1:0", Cert: certFile, Key: keyFile}
	ts := startServer(t, cfg, func(d *Deps) {
		d.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	return ts, map[string]streamDialer{"tcp": plainDialer(ts), "tls": tlsDialer(ts)}
}

func newPionTCPClient(t *testing.T, control net.Conn, server net.Addr) *turn.Client {
	t.Helper()
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "tcpuser")
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(), TURNServerAddr: server.String(),
		Conn: turn.NewSTUNConn(control), Username: user, Password: pass, Realm: realm,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	return client
}

// pionRelay is a pion client with a TCP allocation and one bound data connection.
type pionRelay struct {
	client  *turn.Client
	control net.Conn
	alloc   io.Closer
	data    net.Conn
}

// pionTCPRelay allocates TCP through a pion client on a new control connection, then
// Connects to peer and binds a new data connection (pion's DialWithConn does both).
func pionTCPRelay(t *testing.T, dial streamDialer, peer string) pionRelay {
	t.Helper()
	control := dial(t)
	client := newPionTCPClient(t, control, control.RemoteAddr())
	alloc, err := client.AllocateTCP()
	if err != nil {
		t.Fatalf("AllocateTCP: %v", err)
	}
	t.Cleanup(func() { _ = alloc.Close(); _ = control.Close() })
	data, err := alloc.DialWithConn(dial(t), "tcp", peer)
	if err != nil {
		t.Fatalf("Connect/ConnectionBind: %v", err)
	}
	t.Cleanup(func() { _ = data.Close() })
	return pionRelay{client: client, control: control, alloc: alloc, data: data}
}

// roundTrip writes a pattern both ways through a relayed data connection and an echo.
func roundTrip(t *testing.T, data net.Conn, size int) {
	t.Helper()
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	errc := make(chan error, 1)
	go func() { _, err := data.Write(msg); errc <- err }()
	got := make([]byte, len(msg))
	_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(data, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
}

// TestTCPRelayConnect: Connect → ConnectionBind → bytes both ways, over TCP and TLS
// control connections; bytes are counted live; the data connection counts toward
// tcp.max_connections; closing the allocation closes the data connection.
func TestTCPRelayConnect(t *testing.T) {
	ts, dialers := startTCPServer(t, tcpConfig())
	peer := startTCPPeer(t)
	for _, name := range []string{"tcp", "tls"} {
		t.Run(name, func(t *testing.T) {
			before := ts.counter(t, "switchboard_turn_relayed_bytes_total", "direction", "client_to_peer")
			r := pionTCPRelay(t, dialers[name], peer.addr().String())
			alloc, data := r.alloc, r.data
			roundTrip(t, data, 256<<10)
			if got := ts.counter(t, "switchboard_turn_relayed_bytes_total", "direction", "client_to_peer") - before; got < 256<<10 {
				t.Errorf("client_to_peer bytes grew by %v, want >= %d", got, 256<<10)
			}
			if n := ts.counter(t, "switchboard_turn_tcp_connections_active"); n != 2 {
				t.Errorf("tcp connections active = %v, want 2 (control + data)", n)
			}
			if n := ts.counter(t, "switchboard_turn_tcp_peer_connections_active"); n != 1 {
				t.Errorf("peer connections active = %v, want 1", n)
			}
			if err := alloc.Close(); err != nil {
				t.Fatal(err)
			}
			_ = data.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := data.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Fatalf("data connection after the allocation closed: %v, want closed", err)
			}
			waitFor(t, "peer connection released", func() bool {
				return ts.counter(t, "switchboard_turn_tcp_peer_connections_active") == 0
			})
			_ = data.Close()
			_ = r.control.Close()
			waitFor(t, "client connections released", func() bool {
				return ts.counter(t, "switchboard_turn_tcp_connections_active") == 0
			})
		})
	}
	ts.lint(t)
}

// TestTCPRelayInbound: a peer's connection to the relayed address reaches the client
// (ConnectionAttempt) only when the allocation has a permission for the peer.
func TestTCPRelayInbound(t *testing.T) {
	ts, dialers := startTCPServer(t, tcpConfig())
	for _, tt := range []struct {
		name       string
		permission bool
	}{{"with permission", true}, {"without permission", false}} {
		t.Run(tt.name, func(t *testing.T) {
			control := dialers["tcp"](t)
			client := newPionTCPClient(t, control, control.RemoteAddr())
			alloc, err := client.AllocateTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = alloc.Close() }()
			if tt.permission {
				if err := client.CreatePermission(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
					t.Fatal(err)
				}
			}
			relayed := alloc.Addr().(*net.TCPAddr)
			peer, err := net.Dial("tcp4", relayed.String())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = peer.Close() }()
			if !tt.permission {
				_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := peer.Read(make([]byte, 1)); err == nil || isTimeout(err) {
					t.Fatalf("peer without permission: %v, want closed", err)
				}
				return
			}
			_ = alloc.SetDeadline(time.Now().Add(5 * time.Second))
			data, err := alloc.AcceptTCPWithConn(dialers["tcp"](t))
			if err != nil {
				t.Fatalf("accept: %v", err)
			}
			defer func() { _ = data.Close() }()
			go func() { _, _ = io.Copy(peer, peer) }() // the peer echoes
			roundTrip(t, data, 64<<10)
		})
	}
	if n := ts.counter(t, "switchboard_turn_tcp_peer_connections_opened_total", "direction", "inbound"); n != 2 {
		t.Errorf("inbound opened = %v, want 2 (policy passed; pion checked the permission)", n)
	}
}

// connectCode allocates TCP on a raw stream client and returns the Connect answer's code.
func connectCode(t *testing.T, c *rawClient, peer *net.UDPAddr) int {
	t.Helper()
	_, code := c.request(stun.MethodConnect, peerAddr{peer})
	return code
}

func rawTCPAlloc(t *testing.T, ts *testServer) *rawClient {
	t.Helper()
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "raw")
	c := dialRaw(t, "tcp", ts.TCPAddr(), user, pass)
	if _, code := c.request(stun.MethodAllocate, transportTCP()); code != 0 {
		t.Fatalf("TCP Allocate: %d", code)
	}
	return c
}

// TestTCPAllocateCodes: who may have a TCP allocation, and the codes of the refusals.
func TestTCPAllocateCodes(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		network string
		extra   []stun.Setter
		want    int
	}{
		{"off over tcp", false, "tcp", nil, 442},
		{"off over udp", false, "udp", nil, 442},
		{"on over udp", true, "udp", nil, 400},
		{"on over udp with EVEN-PORT", true, "udp", []stun.Setter{attr{stun.AttrEvenPort, []byte{0x80}}}, 400},
		{"on with EVEN-PORT", true, "tcp", []stun.Setter{attr{stun.AttrEvenPort, []byte{0x80}}}, 400},
		{"on with RESERVATION-TOKEN", true, "tcp", []stun.Setter{attr{stun.AttrReservationToken, []byte("12345678")}}, 400},
		{"on with DONT-FRAGMENT", true, "tcp", []stun.Setter{attr{stun.AttrDontFragment, nil}}, 400},
		{"on over tcp", true, "tcp", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Relay.TCPAllocations = tt.enabled
			ts := startServer(t, cfg)
			addr := net.Addr(ts.UDPAddr())
			if tt.network == "tcp" {
				addr = ts.TCPAddr()
			}
			user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "codes")
			c := dialRaw(t, tt.network, addr, user, pass)
			if _, code := c.request(stun.MethodAllocate, append([]stun.Setter{transportTCP()}, tt.extra...)...); code != tt.want {
				t.Fatalf("Allocate TCP: code %d, want %d", code, tt.want)
			}
			// A UDP allocation on the same kind of connection is unaffected.
			c2 := dialRaw(t, tt.network, addr, user, pass)
			if _, code := c2.allocate(); code != 0 {
				t.Fatalf("UDP Allocate: code %d", code)
			}
		})
	}
}

// TestTCPConnectCodes: RFC 6062 codes for Connect: policy 403, duplicate 446, connect
// failure 447, per-allocation cap 486, total cap 508, Connect on a UDP allocation 403.
func TestTCPConnectCodes(t *testing.T) {
	closedPort := func() *net.UDPAddr {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := ln.Addr().(*net.TCPAddr)
		_ = ln.Close()
		return &net.UDPAddr{IP: a.IP, Port: a.Port}
	}
	echo := func() *net.UDPAddr {
		a := startTCPPeer(t).addr()
		return &net.UDPAddr{IP: a.IP, Port: a.Port}
	}
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps func(t *testing.T, ts *testServer) []int // codes seen
		want  []int
	}{
		{"loopback refused by default policy", func(c *Config) { c.Peers.Allow = nil }, func(t *testing.T, ts *testServer) []int {
			return []int{connectCode(t, rawTCPAlloc(t, ts), echo())}
		}, []int{403}},
		{"private and mapped loopback refused", func(c *Config) { c.Peers.Allow = nil }, func(t *testing.T, ts *testServer) []int {
			c := rawTCPAlloc(t, ts)
			return []int{
				connectCode(t, c, &net.UDPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8080}),
				connectCode(t, c, &net.UDPAddr{IP: net.ParseIP("169.254.169.254"), Port: 8080}),
				connectCode(t, c, &net.UDPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 8080}),
				connectCode(t, c, &net.UDPAddr{IP: net.ParseIP("0.0.0.0"), Port: 8080}),
			}
		}, []int{403, 403, 403, 403}},
		{"low port refused", nil, func(t *testing.T, ts *testServer) []int {
			return []int{connectCode(t, rawTCPAlloc(t, ts), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80})}
		}, []int{403}},
		{"connect failure", nil, func(t *testing.T, ts *testServer) []int {
			return []int{connectCode(t, rawTCPAlloc(t, ts), closedPort())}
		}, []int{447}},
		{"duplicate", nil, func(t *testing.T, ts *testServer) []int {
			c, p := rawTCPAlloc(t, ts), echo()
			return []int{connectCode(t, c, p), connectCode(t, c, p)}
		}, []int{0, 446}},
		{"per-allocation cap", func(c *Config) { c.Quotas.TCPConnectionsPerAllocation = 1 }, func(t *testing.T, ts *testServer) []int {
			c := rawTCPAlloc(t, ts)
			return []int{connectCode(t, c, echo()), connectCode(t, c, echo())}
		}, []int{0, 486}},
		{"total cap", func(c *Config) { c.Quotas.TCPConnectionsTotal = 1 }, func(t *testing.T, ts *testServer) []int {
			a, b := rawTCPAlloc(t, ts), rawTCPAlloc(t, ts)
			return []int{connectCode(t, a, echo()), connectCode(t, b, echo())}
		}, []int{0, 508}},
		{"connect on a UDP allocation", nil, func(t *testing.T, ts *testServer) []int {
			user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "udpalloc")
			c := dialRaw(t, "tcp", ts.TCPAddr(), user, pass)
			if _, code := c.allocate(); code != 0 {
				t.Fatalf("allocate: %d", code)
			}
			return []int{connectCode(t, c, echo())}
		}, []int{403}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tcpConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			ts := startServer(t, cfg)
			got := tt.steps(t, ts)
			if len(got) != len(tt.want) {
				t.Fatalf("codes %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("codes %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestTCPRelayInboundPolicy: with the default policy a loopback peer is closed at accept
// and counted, before pion looks at permissions.
func TestTCPRelayInboundPolicy(t *testing.T) {
	cfg := tcpConfig()
	cfg.Peers.Allow = nil
	ts := startServer(t, cfg)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "inpolicy")
	c2 := dialRaw(t, "tcp", ts.TCPAddr(), user, pass)
	resp, code := c2.request(stun.MethodAllocate, transportTCP())
	if code != 0 {
		t.Fatal(code)
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp4", (&net.TCPAddr{IP: relayed.IP, Port: relayed.Port}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Close() }()
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("loopback peer: %v, want closed", err)
	}
	waitFor(t, "policy refusal counted", func() bool {
		return ts.counter(t, "switchboard_turn_tcp_peer_connections_refused_total", "reason", peerRefusedPolicy) == 1
	})
}

// TestTCPRelayBandwidth: the allocation's token bucket slows TCP relayed bytes to the
// configured rate in each direction.
func TestTCPRelayBandwidth(t *testing.T) {
	const rate, burst, size = 512 << 10, 64 << 10, 576 << 10
	cfg := tcpConfig()
	cfg.Quotas.BandwidthBytesPerSecond, cfg.Quotas.BandwidthBurstBytes = rate, burst
	ts, dialers := startTCPServer(t, cfg)
	data := pionTCPRelay(t, dialers["tcp"], startTCPPeer(t).addr().String()).data
	start := time.Now()
	roundTrip(t, data, size) // each direction carries size bytes through its own bucket
	// Both directions run at once; each needs (size-burst)/rate = 1 s at least.
	if took, want := time.Since(start), time.Duration(float64(size-burst)/rate*0.9*float64(time.Second)); took < want {
		t.Errorf("%d bytes each way took %v, want >= %v at %d B/s", size, took, want, rate)
	}
	_ = ts
}

// TestTCPRelayIdle: a data connection on which only the peer talks is not idle; one on
// which nobody talks is closed after tcp.idle_timeout.
func TestTCPRelayIdle(t *testing.T) {
	cfg := tcpConfig()
	cfg.TCP.IdleTimeout = 300 * time.Millisecond
	ts, dialers := startTCPServer(t, cfg)
	_ = ts
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	// The peer streams to the client for a while, then falls silent.
	stream := 4 * cfg.TCP.IdleTimeout
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		for end := time.Now().Add(stream); time.Now().Before(end); {
			if _, err := c.Write([]byte("tick")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) //nolint:forbidigo // the peer's send pace
		}
		_, _ = io.Copy(io.Discard, c)
	}()
	r := pionTCPRelay(t, dialers["tcp"], ln.Addr().String())
	client, data := r.client, r.data
	// The control connection is kept busy (as refreshes do in real use): its own idle
	// timeout would end the allocation and with it the data connection.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_, _ = client.SendBindingRequest()
			}
		}
	}()
	start := time.Now()
	_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, data) // returns when the relay closes the data connection
	took := time.Since(start)
	if isTimeout(err) {
		t.Fatal("data connection never closed while idle")
	}
	if took > stream+10*cfg.TCP.IdleTimeout {
		t.Errorf("idle data connection closed only after %v", took)
	}
	if took < stream {
		t.Errorf("data connection closed after %v while the peer was still sending (stream %v)", took, stream)
	}
}

// TestTCPRelayNoLeak: after clients and server are gone, no goroutine stays behind.
func TestTCPRelayNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ts, dialers := startTCPServer(t, tcpConfig())
		peer := startTCPPeer(t)
		r := pionTCPRelay(t, dialers["tls"], peer.addr().String())
		roundTrip(t, r.data, 4096)
		_ = r.alloc.Close()
		_ = r.data.Close()
		r.client.Close()
		_ = r.control.Close()
		_ = ts.Close()
		_ = peer.ln.Close()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond) //nolint:forbidigo // polling with a deadline
	}
}

// connectAndBind sends Connect for peer on control and binds a new data connection to
// the resulting CONNECTION-ID; it returns the data connection and the bind response.
func connectAndBind(t *testing.T, ts *testServer, control *rawClient, peer *net.TCPAddr, user, pass string) (*rawClient, *stun.Message) {
	t.Helper()
	resp, code := control.request(stun.MethodConnect, peerAddr{&net.UDPAddr{IP: peer.IP, Port: peer.Port}})
	if code != 0 {
		t.Fatalf("connect: %d", code)
	}
	cid, err := resp.Get(stun.AttrConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	data := dialRaw(t, "tcp", ts.TCPAddr(), user, pass)
	resp, code = data.request(stun.MethodConnectionBind, attr{stun.AttrConnectionID, cid})
	if code != 0 {
		t.Fatalf("ConnectionBind: %d", code)
	}
	return data, resp
}

// TestConnectionBindSigned: pion's ConnectionBind success lacks MESSAGE-INTEGRITY (RFC
// 8489 §9.2.4 requires it; coturn's client drops the connection without it); the relay
// signs it with the key of the secret the credential was minted with, then the connection
// carries raw bytes.
func TestConnectionBindSigned(t *testing.T) {
	cfg := tcpConfig()
	cfg.Auth.Secrets = []string{secretB, secretA} // the credential below uses the older one
	ts := startServer(t, cfg)
	peer := startTCPPeer(t)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "signed")
	control := dialRaw(t, "tcp", ts.TCPAddr(), user, pass)
	if _, code := control.request(stun.MethodAllocate, transportTCP()); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	data, resp := connectAndBind(t, ts, control, peer.addr(), user, pass)
	if err := stun.NewLongTermIntegrity(user, realm, pass).Check(resp); err != nil {
		t.Fatalf("ConnectionBind success integrity: %v", err)
	}
	if err := stun.Fingerprint.Check(resp); err != nil {
		t.Fatalf("ConnectionBind success fingerprint: %v", err)
	}
	roundTrip(t, data.conn, 4096)
}

// TestConnectionBindAfterCredentialExpiry: like Refresh and Connect of a live allocation, a
// data connection's ConnectionBind is accepted after the credential expired (up to
// auth.max_session), since it joins the user's live allocation.
func TestConnectionBindAfterCredentialExpiry(t *testing.T) {
	ts := startServer(t, tcpConfig())
	peer := startTCPPeer(t)
	user, pass := credFor(t, secretA, time.Now().Add(time.Minute), "expiring")
	control := dialRaw(t, "tcp", ts.TCPAddr(), user, pass)
	if _, code := control.request(stun.MethodAllocate, transportTCP()); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	ts.clock.Add(2 * time.Minute) // the credential has expired; the allocation lives on
	data, _ := connectAndBind(t, ts, control, peer.addr(), user, pass)
	roundTrip(t, data.conn, 4096)

	// A stranger's expired credential still gets nothing.
	other, otherPass := credFor(t, secretA, time.Now().Add(time.Minute), "nobody")
	late := dialRaw(t, "tcp", ts.TCPAddr(), other, otherPass)
	if _, code := late.request(stun.MethodConnectionBind, attr{stun.AttrConnectionID, []byte{1, 2, 3, 4}}); code != 401 {
		t.Fatalf("ConnectionBind with another user's expired credential: %d, want 401", code)
	}
}

// TestTCPRelayIPv6Data: a TCP allocation in the family the client asks for; the relay
// connects out from its IPv6 relayed address; an IPv4-mapped private peer is refused.
func TestTCPRelayIPv6Data(t *testing.T) {
	cfg := dualConfig()
	cfg.Relay.TCPAllocations = true
	ts := startServer(t, cfg)
	peer := startTCPPeerAt(t, "tcp6", "[::1]:0").addr()
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "v6")
	control := dialRaw(t, "tcp", ts.TCPAddr(), user, pass)
	if _, code := control.request(stun.MethodAllocate, transportTCP(), family(famIPv6)); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	if code := connectCode(t, control, &net.UDPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: peer.Port}); code != 403 {
		t.Fatalf("IPv4-mapped private peer: %d, want 403", code)
	}
	data, _ := connectAndBind(t, ts, control, peer, user, pass)
	roundTrip(t, data.conn, 4096)
}

// TestTCPConnectTimeout: a peer that never completes the handshake (its accept queue is
// full, so the kernel drops our SYNs) gets 447 after relay.tcp_connect_timeout.
func TestTCPConnectTimeout(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(fd) }()
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	// Fill the accept queue; nobody accepts.
	for filled := false; !filled; {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err != nil {
			filled = true
			continue
		}
		defer func() { _ = c.Close() }()
	}
	cfg := tcpConfig()
	cfg.Relay.TCPConnectTimeout = 500 * time.Millisecond // below the RFC's 30 s only to keep the test short
	ts := startServer(t, cfg)
	start := time.Now()
	if code := connectCode(t, rawTCPAlloc(t, ts), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); code != 447 {
		t.Fatalf("Connect to a peer that never answers: %d, want 447", code)
	}
	if took := time.Since(start); took < cfg.Relay.TCPConnectTimeout {
		t.Fatalf("447 after %v, before the %v timeout", took, cfg.Relay.TCPConnectTimeout)
	}
	if n := ts.counter(t, "switchboard_turn_tcp_peer_connections_refused_total", "reason", peerRefusedConnect); n != 1 {
		t.Errorf("connect_failed = %v", n)
	}
}

// TestTCPRelayWarnsOpenedPeers: TCP relays beside a widened peer policy are logged at start.
func TestTCPRelayWarnsOpenedPeers(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  func(*Config)
		warn bool
	}{
		{"tcp relay, loopback opened", func(c *Config) { c.Relay.TCPAllocations = true }, true},
		{"tcp relay, default policy", func(c *Config) { c.Relay.TCPAllocations = true; c.Peers.Allow = nil }, false},
		{"udp only, loopback opened", func(*Config) {}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.cfg(&cfg)
			ts := startServer(t, cfg)
			if got := strings.Contains(ts.logs.String(), "relay.tcp_allocations is on"); got != tt.warn {
				t.Fatalf("warning logged = %v, want %v:\n%s", got, tt.warn, ts.logs.String())
			}
		})
	}
}
