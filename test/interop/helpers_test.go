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
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/credapi"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// logSink collects every log line a test produces (credapi's and the pion client's) so the
// test can scan them for secrets and issued passwords at the end.
type logSink struct {
	testtool.SyncBuffer
}

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

// credentialCase is one TURN server under test: where credapi's credentials are used, and the
// STUN error text that proves a refusal came from the server's authentication.
type credentialCase struct {
	server    string   // for messages: "coturn", "turnd"
	relayAddr string   // UDP address for the refusal cases
	refusals  []string // any of these in the error marks an authentication refusal
	newSecret string
	api       string // credapi with both secrets
	apiOld    string // credapi with only the older secret
	logs      *logSink
	sensitive []string
}

// checkCredentials is the proof both servers must pass: credapi credentials allocate over UDP
// and TCP (named and generated ids), a credential minted with the older secret works during
// rotation, a wrong secret, an expired or tampered username and an unpadded password are
// refused by authentication, and no log line carries a secret or an issued password.
func checkCredentials(t *testing.T, cc credentialCase) {
	ctx := t.Context()
	sensitive := cc.sensitive
	allocates := func(t *testing.T, api, query, transport string) {
		t.Helper()
		c := fetchCredential(t, api, query)
		sensitive = append(sensitive, c.Password)
		if err := allocateAndEcho(ctx, cc.logs, uriAddr(t, c.URIs, transport), transport, c.Username, c.Password); err != nil {
			t.Fatalf("%s refused credapi's credential over %s: %v", cc.server, transport, err)
		}
	}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run("credapi credential over "+transport, func(t *testing.T) {
			allocates(t, cc.api, "username=interop-"+transport, transport)
		})
	}
	t.Run("generated id", func(t *testing.T) { allocates(t, cc.api, "ttl=600", "udp") })
	t.Run("minted with the older secret during rotation", func(t *testing.T) { allocates(t, cc.apiOld, "", "udp") })

	wrongCred, _ := turncred.Static("some-other-secret-"+strings.Repeat("x", 32)).Mint(time.Now(), time.Hour, "x")
	expired, _ := turncred.Static(cc.newSecret).Mint(time.Now().Add(-2*time.Hour), time.Hour, "late")
	good := fetchCredential(t, cc.api, "username=tamper")
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
			err := allocateAndEcho(c, cc.logs, cc.relayAddr, "udp", r.user, r.pass)
			if err == nil {
				t.Fatalf("%s accepted a credential with %s", cc.server, r.name)
			}
			// The refusal must be the server's authentication error, not a transport failure.
			for _, want := range cc.refusals {
				if strings.Contains(err.Error(), want) {
					return
				}
			}
			t.Fatalf("want one of %q from %s, got: %v", cc.refusals, cc.server, err)
		})
	}
	cc.logs.assertNoLeak(t, append(sensitive, good.Password)...)
}
