package turnrelay

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

const (
	secretA = "test-secret-A-0123456789abcdef0123456789"
	secretB = "test-secret-B-0123456789abcdef0123456789"
	realm   = "test.local"
)

// clock is a settable clock for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testServer struct {
	*Server
	reg     *prometheus.Registry
	secrets *turncred.Secrets
	clock   *clock
	logs    *syncBuffer
}

type syncBuffer = testtool.SyncBuffer

// testConfig serves on loopback ephemeral ports and allows loopback peers.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Realm = realm
	cfg.UDP.Sockets = 2
	cfg.Relay.IP = "127.0.0.1"
	cfg.Peers.Allow = []string{"127.0.0.0/8"}
	cfg.Auth.Secrets = []string{secretA}
	cfg.Quotas.BandwidthBytesPerSecond = 0
	return cfg
}

func startServer(t *testing.T, cfg Config, deps ...func(*Deps)) *testServer {
	t.Helper()
	ts := &testServer{reg: prometheus.NewRegistry(), clock: &clock{t: time.Now()}, logs: &syncBuffer{}}
	var err error
	ts.secrets, err = turncred.NewSecrets(cfg.Auth.Secrets, cfg.Auth.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	d := Deps{
		Logger:   slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Registry: ts.reg, Secrets: ts.secrets, Now: ts.clock.Now,
	}
	for _, f := range deps {
		f(&d)
	}
	ts.Server, err = New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Close() })
	return ts
}

func (ts *testServer) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func (ts *testServer) lint(t *testing.T) {
	t.Helper()
	problems, err := testutil.GatherAndLint(ts.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// udpPeer is a local UDP endpoint standing for a remote peer: it echoes (or only counts).
type udpPeer struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	bytes int
	times []time.Time
	sizes []int
}

func startPeer(t *testing.T, echo bool) *udpPeer { return startPeerOn(t, "127.0.0.1", echo) }

// startPeerOn starts a peer on a given loopback address (IPv4 or IPv6): permissions are
// per IP, so peers on 127.0.0.1 and 127.0.0.2 need separate ones.
func startPeerOn(t *testing.T, ip string, echo bool) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpPeer{conn: c}
	t.Cleanup(func() { _ = c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.bytes += n
			p.times = append(p.times, time.Now())
			p.sizes = append(p.sizes, n)
			p.mu.Unlock()
			if echo {
				_, _ = c.WriteToUDP(buf[:n], from)
			}
		}
	}()
	return p
}

func (p *udpPeer) addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

// received reports whether a datagram of size n arrived.
func (p *udpPeer) received(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.sizes, n)
}

// bytesBetween sums the payload received in [from, to).
func (p *udpPeer) bytesBetween(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i, at := range p.times {
		if !at.Before(from) && at.Before(to) {
			n += p.sizes[i]
		}
	}
	return n
}

// rawClient speaks TURN message by message, so tests see exact codes.
type rawClient struct {
	t          *testing.T
	conn       net.Conn
	stream     bool
	user, pass string
	nonce      string
	realm      string
	br         io.Reader
}

func dialRaw(t *testing.T, network string, addr net.Addr, user, pass string) *rawClient {
	t.Helper()
	c, err := net.Dial(network, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, conn: c, stream: network == "tcp", user: user, pass: pass, br: c}
}

func credFor(t *testing.T, secret string, expiry time.Time, id string) (string, string) {
	t.Helper()
	u := turncred.Username(expiry, id)
	return u, turncred.Password([]byte(secret), u)
}

type attr struct {
	t stun.AttrType
	v []byte
}

func (a attr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

func transportUDP() attr { return attr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}} }
func lifetime(d time.Duration) attr {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(d/time.Second))
	return attr{stun.AttrLifetime, v}
}
func channel(n uint16) attr { return attr{stun.AttrChannelNumber, []byte{byte(n >> 8), byte(n), 0, 0}} }

type peerAddr struct{ a *net.UDPAddr }

func (p peerAddr) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: p.a.IP, Port: p.a.Port}.AddToAs(m, stun.AttrXORPeerAddress)
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next STUN message or ChannelData frame.
func (c *rawClient) read(timeout time.Duration) ([]byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	if !c.stream {
		buf := make([]byte, 2048)
		n, err := c.conn.Read(buf)
		return buf[:n], err
	}
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c.br, hdr); err != nil {
		return nil, err
	}
	size := int(binary.BigEndian.Uint16(hdr[2:]))
	if hdr[0]&0xc0 == 0 {
		size += 16
	} else {
		size = (size + 3) &^ 3
	}
	rest := make([]byte, size)
	if _, err := io.ReadFull(c.br, rest); err != nil {
		return nil, err
	}
	return append(hdr, rest...), nil
}

// readMessage skips non-STUN frames until a STUN message arrives.
func (c *rawClient) readMessage() (*stun.Message, error) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		b, err := c.read(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if len(b) < 20 || b[0]&0xc0 != 0 {
			continue
		}
		m := &stun.Message{Raw: b}
		if err := m.Decode(); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, errors.New("no STUN message within 3s")
}

// request sends an authenticated request, answering a 401 challenge to an unauthenticated
// request and any 438 stale nonce, and returns the final response's error code (0 on success).
func (c *rawClient) request(method stun.Method, setters ...stun.Setter) (*stun.Message, int) {
	c.t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		all := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		all = append(all, setters...)
		if c.nonce != "" {
			all = append(all, stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce),
				stun.NewLongTermIntegrity(c.user, c.realm, c.pass))
		}
		all = append(all, stun.Fingerprint)
		msg, err := stun.Build(all...)
		if err != nil {
			c.t.Fatal(err)
		}
		c.write(msg.Raw)
		resp, err := c.readMessage()
		if err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		if resp.Type.Class == stun.ClassSuccessResponse {
			return resp, 0
		}
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(resp); err != nil {
			c.t.Fatalf("%s: error response without ERROR-CODE", method)
		}
		var nonce stun.Nonce
		// A 401 to a request that carried credentials refuses them; a 438 asks for a retry.
		retry := ec.Code == stun.CodeStaleNonce || (ec.Code == stun.CodeUnauthorized && c.nonce == "")
		if retry && nonce.GetFrom(resp) == nil {
			var r stun.Realm
			_ = r.GetFrom(resp)
			c.nonce, c.realm = nonce.String(), r.String()
			continue
		}
		return resp, int(ec.Code)
	}
	c.t.Fatalf("%s: challenged repeatedly", method)
	return nil, 0
}

// challenge sends an unauthenticated Allocate to learn the nonce and realm.
func (c *rawClient) challenge() {
	c.t.Helper()
	msg, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transportUDP())
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(msg.Raw)
	resp, err := c.readMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	var nonce stun.Nonce
	var r stun.Realm
	if nonce.GetFrom(resp) != nil || r.GetFrom(resp) != nil {
		c.t.Fatal("challenge without NONCE/REALM")
	}
	c.nonce, c.realm = nonce.String(), r.String()
}

func (c *rawClient) allocate(extra ...stun.Setter) (*net.UDPAddr, int) {
	c.t.Helper()
	resp, code := c.request(stun.MethodAllocate, append([]stun.Setter{transportUDP()}, extra...)...)
	if code != 0 {
		return nil, code
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil {
		c.t.Fatal(err)
	}
	return &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}, 0
}

func (c *rawClient) sendIndication(peer *net.UDPAddr, data []byte) {
	c.t.Helper()
	msg, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		peerAddr{peer}, attr{stun.AttrData, data}, stun.Fingerprint)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(msg.Raw)
}

func (c *rawClient) channelData(num uint16, data []byte) {
	c.t.Helper()
	b := make([]byte, 4, 4+len(data)+3)
	binary.BigEndian.PutUint16(b, num)
	binary.BigEndian.PutUint16(b[2:], uint16(len(data)))
	b = append(b, data...)
	if c.stream {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	c.write(b)
}

// readData waits for relayed payload: a Data indication or ChannelData.
func (c *rawClient) readData(timeout time.Duration) (payload []byte, viaChannel uint16, err error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := c.read(time.Until(deadline))
		if err != nil {
			return nil, 0, err
		}
		if b[0]&0xc0 == 0x40 {
			size := int(binary.BigEndian.Uint16(b[2:]))
			return b[4 : 4+size], binary.BigEndian.Uint16(b), nil
		}
		m := &stun.Message{Raw: b}
		if m.Decode() != nil || m.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
			continue
		}
		v, err := m.Get(stun.AttrData)
		return v, 0, err
	}
	return nil, 0, errors.New("no data before the deadline")
}
