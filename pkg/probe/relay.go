package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// turnURI is one parsed turn:/turns: URI (RFC 7065).
type turnURI struct {
	raw       string
	secure    bool
	addr      string // host:port
	host      string
	transport string // udp or tcp
}

func parseTURNURI(raw string) (turnURI, error) {
	u := turnURI{raw: raw}
	rest, ok := strings.CutPrefix(raw, "turn:")
	if !ok {
		if rest, ok = strings.CutPrefix(raw, "turns:"); !ok {
			return u, fmt.Errorf("%q is not a turn: or turns: URI", raw)
		}
		u.secure = true
	}
	hostport, query, _ := strings.Cut(rest, "?")
	u.transport = "udp"
	port := "3478"
	if u.secure {
		u.transport, port = "tcp", "5349"
	}
	if query != "" {
		t, ok := strings.CutPrefix(query, "transport=")
		if !ok || (t != "udp" && t != "tcp") {
			return u, fmt.Errorf("%q: the only query allowed is transport=udp|tcp", raw)
		}
		u.transport = t
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil { // no port given
		host = strings.Trim(hostport, "[]")
	} else {
		port = p
	}
	if host == "" {
		return u, fmt.Errorf("%q has no host", raw)
	}
	if !validHost(host) {
		return u, fmt.Errorf("%q: bad host %q", raw, host)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return u, fmt.Errorf("%q: bad port %q", raw, port)
	}
	u.host, u.addr = host, net.JoinHostPort(host, port)
	return u, nil
}

// validHost accepts an IP address or a DNS name.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	for _, c := range h {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// checkRelays allocates through every distinct TURN URI credapi handed out and relays a
// round trip to the local echo peer. With no credentials (haveCreds false) it reports one
// failure instead of pretending the relay is fine.
func checkRelays(ctx context.Context, cfg Config, servers []iceServer, haveCreds bool) []Result {
	if !haveCreds {
		return []Result{{Name: "turn", Err: errors.New("not checked: no credentials from credapi")}}
	}
	var results []Result
	seen := map[string]bool{}
	for _, s := range servers {
		for _, raw := range s.URLs {
			if !strings.HasPrefix(raw, "turn:") && !strings.HasPrefix(raw, "turns:") {
				continue
			}
			u, err := parseTURNURI(raw)
			if err != nil {
				results = append(results, Result{Name: "turn", Err: err})
				continue
			}
			key := fmt.Sprint(u.secure, u.transport, u.addr)
			if seen[key] {
				continue
			}
			seen[key] = true
			name := "turn/" + u.transport
			if u.secure {
				name = "turns/tcp"
			}
			results = append(results, timed(ctx, cfg, name, func(ctx context.Context) (string, error) {
				return relayRoundTrip(ctx, cfg, u, s.Username, s.Credential)
			}))
		}
	}
	return results
}

// relayRoundTrip logs in at u, allocates a UDP relay, and sends a datagram through it to the
// echo peer and back.
func relayRoundTrip(ctx context.Context, cfg Config, u turnURI, username, password string) (string, error) {
	conn, err := dialTURN(ctx, u)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: u.addr, TURNServerAddr: u.addr,
		Username: username, Password: password,
		Conn: conn, LoggerFactory: lf, Software: "switchboard-probe",
		RTO: 200 * time.Millisecond,
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", u.raw, err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		return "", fmt.Errorf("%s: %w", u.raw, err)
	}
	relay, err := client.AllocateWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: allocate: %w (a 401 means turnd and credapi do not share a secret)", u.raw, err)
	}
	defer func() { _ = relay.Close() }()

	peer, peerAddr, err := startEchoPeer(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer func() { _ = peer.Close() }()

	msg := make([]byte, 64)
	_, _ = rand.Read(msg)
	buf := make([]byte, 1500)
	start := time.Now()
	for ctx.Err() == nil {
		// The first send also installs the permission; resend until the echo comes back.
		if _, err := relay.WriteTo(msg, peerAddr); err != nil {
			hint := ""
			if strings.Contains(err.Error(), "403") {
				hint = " (turnd refuses this peer address: its peers.allow must admit it)"
			}
			return "", fmt.Errorf("%s: send through relay %s to peer %s: %w%s", u.raw, relay.LocalAddr(), peerAddr, err, hint)
		}
		_ = relay.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, _, err := relay.ReadFrom(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%s: read through relay: %w", u.raw, err)
		}
		if !bytes.Equal(buf[:n], msg) {
			return "", fmt.Errorf("%s: the relay returned %d different bytes", u.raw, n)
		}
		return fmt.Sprintf("%s: allocated %s, round trip to peer %s in %s", u.raw, relay.LocalAddr(), peerAddr,
			time.Since(start).Round(10*time.Microsecond)), nil
	}
	return "", fmt.Errorf("%s: allocated %s but no echo from peer %s came back (turnd's peers.allow must admit the peer's address)",
		u.raw, relay.LocalAddr(), peerAddr)
}

// dialTURN opens the client side of u's transport as a PacketConn for the pion client.
func dialTURN(ctx context.Context, u turnURI) (net.PacketConn, error) {
	switch {
	case u.transport == "udp":
		var lc net.ListenConfig
		network := "udp4"
		if ip := net.ParseIP(u.host); ip != nil && ip.To4() == nil {
			network = "udp6"
		}
		pc, err := lc.ListenPacket(ctx, network, ":0")
		if err != nil {
			return nil, fmt.Errorf("%s: local UDP socket: %w", u.raw, err)
		}
		return pc, nil
	case u.secure:
		d := tls.Dialer{Config: &tls.Config{ServerName: u.host, MinVersion: tls.VersionTLS12}}
		c, err := d.DialContext(ctx, "tcp", u.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.raw, err)
		}
		return turn.NewSTUNConn(c), nil
	default:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", u.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.raw, err)
		}
		return turn.NewSTUNConn(c), nil
	}
}

// startEchoPeer listens on cfg.PeerListen and echoes every datagram; it returns the socket and
// the address turnd should send to.
func startEchoPeer(ctx context.Context, cfg Config) (net.PacketConn, net.Addr, error) {
	listen := cfg.PeerListen
	if listen == "" {
		listen = DefaultConfig().PeerListen
	}
	var lc net.ListenConfig
	peer, err := lc.ListenPacket(ctx, "udp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("echo peer on %s (--peer-listen): %w", listen, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := peer.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = peer.WriteTo(buf[:n], from)
		}
	}()
	addr := peer.LocalAddr()
	if cfg.PeerAddr != "" {
		a, err := net.ResolveUDPAddr("udp", cfg.PeerAddr)
		if err != nil {
			_ = peer.Close()
			return nil, nil, fmt.Errorf("--peer-addr %q: %w", cfg.PeerAddr, err)
		}
		addr = a
	}
	return peer, addr, nil
}
