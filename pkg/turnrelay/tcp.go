package turnrelay

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/connlimit"
)

var errBadFrame = errors.New("turnrelay: TCP stream is neither STUN nor ChannelData")

// tcpListener guards a TCP (or TLS) listener: connection caps in total and per client IP,
// accept errors that do not end the server, and framed connections with read deadlines.
type tcpListener struct {
	net.Listener
	tls       *tls.Config // nil for plain TCP
	cfg       TCP
	auth      *authenticator
	m         *metrics
	log       *slog.Logger
	conns     *connlimit.Counter[netip.Addr] // shared by every TCP and TLS listener
	closeOnce sync.Once
	// relays serves this listener's allocations; frameConn asks it about TCP allocations.
	relays *tcpRelays
}

func newTCPListener(ln net.Listener, tlsConf *tls.Config, cfg TCP, conns *connlimit.Counter[netip.Addr],
	auth *authenticator, m *metrics, log *slog.Logger,
) *tcpListener {
	return &tcpListener{Listener: ln, tls: tlsConf, cfg: cfg, conns: conns, auth: auth, m: m, log: log}
}

// Accept returns the next admitted connection. pion's accept loop stops at the first error,
// so transient errors (EMFILE, ECONNABORTED) are retried here with a short backoff and
// only a closed listener ends it.
func (l *tcpListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.log.Warn("accept failed; retrying", "err", err)
			time.Sleep(backoff) // bounded backoff: the error is the host's, not a client's
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		ip := netip.Addr{}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip = ta.AddrPort().Addr().Unmap()
		}
		if reason := l.admit(ip); reason != "" {
			l.m.connRefused.WithLabelValues(reason).Inc()
			_ = c.Close()
			continue
		}
		l.m.connActive.Inc()
		var inner net.Conn
		if l.tls != nil {
			inner = tls.Server(c, l.tls)
		} else {
			inner = c
		}
		key, _ := keyOf(c.RemoteAddr())
		return &frameConn{Conn: inner, l: l, ip: ip, key: key, br: bufio.NewReaderSize(inner, 2048), first: true}, nil
	}
}

func (l *tcpListener) admit(ip netip.Addr) string {
	switch l.conns.Admit(ip) {
	case connlimit.Admitted:
		return ""
	case connlimit.OverPerKey:
		return connPerIP
	default:
		return connTotal
	}
}

func (l *tcpListener) release(ip netip.Addr) {
	l.conns.Release(ip)
	l.m.connActive.Dec()
}

func (l *tcpListener) Close() error {
	var err error
	l.closeOnce.Do(func() { err = l.Listener.Close() })
	return err
}

// frameConn hands pion one TURN frame per Read, so each STUN request can be shown to the
// authenticator before pion handles it, and sets the read deadline for every frame: a
// new connection must speak within first_message_timeout (TLS handshake included), an
// established one within idle_timeout. After a successful ConnectionBind (RFC 6062) it
// is a data connection: bytes pass through unframed and untouched.
type frameConn struct {
	net.Conn
	l     *tcpListener
	ip    netip.Addr
	key   clientKey
	br    *bufio.Reader
	first bool
	rest  int // bytes still to pass through of a frame larger than the caller's buffer
	once  sync.Once
	chal  pendingChallenge

	// The last ConnectionBind request (streamcodes.go); touched only on pion's read loop
	// for this connection.
	bindTxn  [12]byte
	bindUser string

	data      atomic.Bool  // ConnectionBind succeeded: a data connection
	lastWrite atomic.Int64 // nanotime of the last write on a data connection
}

func (c *frameConn) Read(p []byte) (int, error) {
	if c.data.Load() {
		return c.readData(p)
	}
	timeout := c.l.cfg.IdleTimeout
	if c.first {
		timeout = c.l.cfg.FirstMessageTimeout
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	if c.rest > 0 {
		n, err := io.ReadFull(c.br, p[:min(len(p), c.rest)])
		c.rest -= n
		return n, err
	}
	hdr, err := c.br.Peek(4)
	if err != nil {
		return 0, err
	}
	var size int
	switch hdr[0] & 0xc0 {
	case 0: // STUN
		size = 20 + int(binary.BigEndian.Uint16(hdr[2:]))
	case 0x40: // ChannelData, padded to 4 over streams
		size = 4 + (int(binary.BigEndian.Uint16(hdr[2:]))+3)&^3
	default:
		return 0, fmt.Errorf("%w (first byte %#x)", errBadFrame, hdr[0])
	}
	c.first = false
	if size > len(p) {
		c.rest = size
		n, err := io.ReadFull(c.br, p)
		c.rest -= n
		return n, err
	}
	if _, err := io.ReadFull(c.br, p[:size]); err != nil {
		return 0, err
	}
	if hdr[0]&0xc0 == 0 {
		c.chal.store(c.l.auth.inspect(p[:size], c.key))
		c.noteRequest(p[:size])
	}
	return size, nil
}

// readData reads a data connection. It is idle, and closed, only when neither side has
// sent for idle_timeout: a peer that only downloads keeps it open through our writes.
func (c *frameConn) readData(p []byte) (int, error) {
	idle := c.l.cfg.IdleTimeout
	for {
		if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return 0, err
		}
		n, err := c.br.Read(p)
		if n > 0 || err == nil || !isTimeout(err) || nanotime()-c.lastWrite.Load() >= int64(idle) {
			return n, err
		}
	}
}

func (c *frameConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
