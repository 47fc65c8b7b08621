package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/credapi"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// logSink collects every log line a test produces (credapi's and the pion client's) so the
// test can scan them for secrets and issued passwords at the end.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *logSink) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// assertNoLeak fails if any line of the sink contains one of the sensitive values.
func (s *logSink) assertNoLeak(t *testing.T, sensitive ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(s.String()), "\n")
	for i, line := range lines {
		for _, v := range sensitive {
			if v != "" && strings.Contains(line, v) {
				t.Errorf("log line %d leaks a secret or credential (%.4s...): %s", i+1, v, line)
			}
		}
	}
	t.Logf("scanned %d log lines for %d sensitive values", len(lines), len(sensitive))
}

// startCredapi serves credapi on 127.0.0.1:0 with the given secrets (newest first) and ICE URIs.
func startCredapi(t *testing.T, logs *logSink, secrets []string, iceURLs []string) string {
	t.Helper()
	cfg := credapi.DefaultConfig()
	cfg.Auth.Secrets = secrets
	cfg.ICE.URLs = iceURLs
	cfg.TTL = time.Hour
	s, err := credapi.New(cfg, turncred.Static(secrets...),
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("credapi: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// restCredential is the TURN REST API answer (draft-uberti-behave-turn-rest-00 §2.2).
type restCredential struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	TTL      int      `json:"ttl"`
	URIs     []string `json:"uris"`
}

func fetchCredential(t *testing.T, base, query string) restCredential {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/?service=turn&"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("credapi: status %d: %s", resp.StatusCode, body)
	}
	var c restCredential
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("credapi body: %v", err)
	}
	return c
}

// uriAddr picks the host:port of the URI with the given transport from a uris list.
func uriAddr(t *testing.T, uris []string, transport string) string {
	t.Helper()
	for _, u := range uris {
		rest, ok := strings.CutPrefix(u, "turn:")
		if !ok {
			continue
		}
		hostport, query, _ := strings.Cut(rest, "?")
		q, _ := url.ParseQuery(query)
		if q.Get("transport") == transport {
			return hostport
		}
	}
	t.Fatalf("no turn: URI with transport=%s in %v", transport, uris)
	return ""
}

// allocateAndEcho logs in to the TURN server at addr over transport ("udp" or "tcp") with
// username/password, allocates a UDP relay, and sends a datagram to a loopback peer through
// it and back. Any failure is returned, so tests can also assert refusals.
func allocateAndEcho(ctx context.Context, logs io.Writer, addr, transport, username, password string) error {
	var conn net.PacketConn
	switch transport {
	case "udp":
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		conn = pc
	case "tcp":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		conn = turn.NewSTUNConn(c)
	}
	defer func() { _ = conn.Close() }()
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = logs
	lf.DefaultLogLevel = logging.LogLevelWarn
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr,
		Username: username, Password: password,
		Conn: conn, LoggerFactory: lf,
		RTO: 200 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	relay, err := client.AllocateWithContext(actx)
	if err != nil {
		return fmt.Errorf("allocate: %w", err)
	}
	defer func() { _ = relay.Close() }()

	var lc net.ListenConfig
	peer, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer func() { _ = peer.Close() }()
	// The peer answers whatever reaches it, so the relay's round trip is observable.
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
	msg := []byte("switchboard interop " + time.Now().String())
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		// The first write also installs the permission; resend until the echo arrives.
		if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
			return fmt.Errorf("send through relay: %w", err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, from, err := relay.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("read through relay: %w", err)
		}
		if !bytes.Equal(buf[:n], msg) || from.String() != peer.LocalAddr().String() {
			return fmt.Errorf("relay returned %q from %v", buf[:n], from)
		}
		return nil
	}
	return errors.New("no echo through the relay within 5s")
}
