package turnrelay

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// streamConn is a net.Conn reading from a fixed byte slice.
type streamConn struct {
	net.Conn
	r *bytes.Reader
}

func (s streamConn) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s streamConn) SetReadDeadline(time.Time) error  { return nil }
func (s streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9} }
func (s streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (s streamConn) Close() error                     { return nil }
func (s streamConn) LocalAddr() net.Addr              { return s.RemoteAddr() }
func (s streamConn) SetDeadline(time.Time) error      { return nil }
func (s streamConn) SetWriteDeadline(time.Time) error { return nil }

func fuzzAuth() *authenticator {
	return &authenticator{
		secrets: turncred.Static(secretA, secretB), realm: realm, maxSession: time.Hour,
		q: newQuotas(DefaultConfig().Quotas, time.Now), m: newMetrics(prometheus.NewRegistry()), now: time.Now,
	}
}

func signedAllocate(secret string) []byte {
	u := turncred.Username(time.Now().Add(time.Hour), "fuzz")
	m, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transportUDP(),
		stun.NewUsername(u), stun.NewRealm(realm), stun.NewNonce("n"),
		stun.NewLongTermIntegrity(u, realm, turncred.Password([]byte(secret), u)), stun.Fingerprint)
	return m.Raw
}

// FuzzFrameConn feeds arbitrary TCP streams through the framing that sits in front of pion.
func FuzzFrameConn(f *testing.F) {
	f.Add(signedAllocate(secretB))
	f.Add([]byte{0x40, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0})
	f.Add([]byte{0x40, 0x00, 0xff, 0xff})
	f.Add([]byte{0xc0, 0, 0, 0})
	a := fuzzAuth()
	f.Fuzz(func(t *testing.T, stream []byte) {
		l := &tcpListener{cfg: DefaultConfig().TCP, auth: a, m: a.m}
		src := streamConn{r: bytes.NewReader(stream)}
		c := &frameConn{Conn: src, l: l, br: bufio.NewReaderSize(src, 2048), first: true}
		buf := make([]byte, 1600)
		total := 0
		for range 10000 {
			n, err := c.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d", n)
			}
			total += n
			if err != nil {
				break
			}
		}
		if total > len(stream) {
			t.Fatalf("read %d bytes from a %d-byte stream", total, len(stream))
		}
	})
}

// FuzzObserve: the authenticator sees raw requests before pion; it must never panic or
// change the bytes pion will parse.
func FuzzObserve(f *testing.F) {
	f.Add(signedAllocate(secretA))
	f.Add(signedAllocate(secretB))
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	a := fuzzAuth()
	f.Fuzz(func(t *testing.T, raw []byte) {
		buf := make([]byte, len(raw), len(raw)+64)
		copy(buf, raw)
		c := a.inspect(buf, clientKey{})
		if !bytes.Equal(buf, raw) {
			t.Fatal("inspect changed the message")
		}
		var p pendingChallenge
		p.store(c)
		_ = p.replacement(buf, realm)
		forbidChannelBind(buf)
	})
}

// FuzzParseSend: whatever the Send-indication fast path accepts, pion must decode to the
// same peer and payload, with nothing pion would refuse.
func FuzzParseSend(f *testing.F) {
	f.Add(buildSend(f, &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40000}, []byte("hello")))
	f.Add(buildSend(f, &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 9}, []byte{1, 2, 3, 4}))
	f.Add(buildSend(f, &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 1}, []byte("x"), attr{stun.AttrDontFragment, nil}))
	f.Fuzz(func(t *testing.T, msg []byte) {
		peer, data, ok := parseSend(msg)
		if ok {
			checkAgainstPion(t, msg, peer, data)
		}
	})
}
