package probe

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/credapi"
	"github.com/switchboard-p2p/switchboard/pkg/tracker"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
	"github.com/switchboard-p2p/switchboard/pkg/turnrelay"
)

var quiet = slog.New(slog.DiscardHandler)

// suite is the three daemons in-process on loopback ephemeral ports.
type suite struct{ credapi, tracker string }

func startSuite(t *testing.T, apiSecret, turnSecret string, allowLoopback bool) suite {
	t.Helper()
	tcfg := turnrelay.DefaultConfig()
	tcfg.Listen = "127.0.0.1:0"
	tcfg.UDP.Sockets = 1
	tcfg.Relay.IP = "127.0.0.1"
	if allowLoopback {
		tcfg.Peers.Allow = []string{"127.0.0.0/8"}
	}
	tcfg.Auth.Secrets = []string{turnSecret}
	relay, err := turnrelay.New(tcfg, turnrelay.Deps{Logger: quiet, Registry: prometheus.NewRegistry(), Secrets: turncred.Static(turnSecret)})
	if err != nil {
		t.Fatalf("turnrelay.New: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })

	acfg := credapi.DefaultConfig()
	acfg.Auth.Secrets = []string{apiSecret}
	acfg.ICE.URLs = []string{"stun:" + relay.UDPAddr().String(), "turn:" + relay.UDPAddr().String() + "?transport=udp",
		"turn:" + relay.TCPAddr().String() + "?transport=tcp"}
	api, err := credapi.New(acfg, turncred.Static(apiSecret), quiet, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	apiLn := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, apiLn, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("credapi: %v", err)
		}
	})

	trcfg := tracker.DefaultConfig()
	trcfg.Listen = "127.0.0.1:0"
	tr, err := tracker.New(trcfg, quiet, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	trLn := listen(t)
	go func() { _ = tr.Serve(trLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Shutdown(ctx)
	})
	return suite{credapi: "http://" + apiLn.Addr().String(), tracker: "ws://" + trLn.Addr().String()}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestRun(t *testing.T) {
	secret := strings.Repeat("s", 40)
	other := strings.Repeat("o", 40)
	cases := []struct {
		name                string
		apiSecret, turnSecr string
		allowLoopback       bool
		credapi, tracker    func(s suite) string
		want                map[string]string // check name → "" (ok) or a substring of its error
	}{
		{"healthy suite", secret, secret, true, nil, nil,
			map[string]string{"credapi": "", "turn/udp": "", "turn/tcp": "", "tracker": "", "signal": ""}},
		{"secrets differ", secret, other, true, nil, nil,
			map[string]string{"credapi": "", "turn/udp": "do not share a secret", "turn/tcp": "do not share a secret", "tracker": "", "signal": ""}},
		{"loopback peer refused by policy", secret, secret, false, nil, nil,
			map[string]string{"turn/udp": "peers.allow", "turn/tcp": "peers.allow"}},
		{"credapi down", secret, secret, true, func(suite) string { return "http://127.0.0.1:1" }, nil,
			map[string]string{"credapi": "connect", "turn": "no credentials", "tracker": ""}},
		{"wrong credapi path", secret, secret, true, func(s suite) string { return s.credapi + "/nope" }, nil,
			map[string]string{"credapi": "404"}},
		{"tracker down", secret, secret, true, nil, func(suite) string { return "ws://127.0.0.1:1" },
			map[string]string{"credapi": "", "tracker": "connect", "signal": "not checked"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSuite(t, tc.apiSecret, tc.turnSecr, tc.allowLoopback)
			cfg := DefaultConfig()
			cfg.CredAPI, cfg.Tracker, cfg.Timeout = s.credapi, s.tracker, 3*time.Second
			if tc.credapi != nil {
				cfg.CredAPI = tc.credapi(s)
			}
			if tc.tracker != nil {
				cfg.Tracker = tc.tracker(s)
			}
			var out strings.Builder
			results := Run(t.Context(), cfg, &out)
			got := map[string]Result{}
			for _, r := range results {
				got[r.Name] = r
			}
			for name, wantErr := range tc.want {
				r, ok := got[name]
				switch {
				case !ok:
					t.Errorf("no %q check ran; output:\n%s", name, out.String())
				case wantErr == "" && !r.OK():
					t.Errorf("%s failed: %v", name, r.Err)
				case wantErr != "" && (r.OK() || !strings.Contains(r.Err.Error(), wantErr)):
					t.Errorf("%s: got %v, want an error containing %q", name, r.Err, wantErr)
				}
			}
			if lines := strings.Count(out.String(), "\n"); lines != len(results) {
				t.Errorf("%d lines for %d checks:\n%s", lines, len(results), out.String())
			}
			if strings.Contains(out.String(), secret) {
				t.Errorf("the output shows the secret:\n%s", out.String())
			}
			t.Logf("\n%s", out.String())
		})
	}
}

func TestParseTURNURI(t *testing.T) {
	cases := []struct {
		in, addr, transport string
		secure              bool
		err                 string
	}{
		{"turn:127.0.0.1:3478?transport=udp", "127.0.0.1:3478", "udp", false, ""},
		{"turn:example.org", "example.org:3478", "udp", false, ""},
		{"turn:example.org?transport=tcp", "example.org:3478", "tcp", false, ""},
		{"turns:example.org", "example.org:5349", "tcp", true, ""},
		{"turn:[::1]:3479", "[::1]:3479", "udp", false, ""},
		{"turn:[::1]", "[::1]:3478", "udp", false, ""},
		{"stun:example.org", "", "", false, "not a turn"},
		{"turn:example.org?transport=sctp", "", "", false, "transport=udp|tcp"},
		{"turn::3478", "", "", false, "no host"},
		{"turn:example.org:99999", "", "", false, "bad port"},
		{"turn:0[0", "", "", false, "bad host"},
		{"turn:a b:3478", "", "", false, "bad host"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			u, err := parseTURNURI(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want error %q", u, err, tc.err)
				}
				return
			}
			if err != nil || u.addr != tc.addr || u.transport != tc.transport || u.secure != tc.secure {
				t.Fatalf("got %+v, %v; want %s %s secure=%v", u, err, tc.addr, tc.transport, tc.secure)
			}
		})
	}
}

func TestResultString(t *testing.T) {
	ok := Result{Name: "credapi", Detail: "fine", Took: 1500 * time.Microsecond}.String()
	bad := Result{Name: "tracker", Err: fmt.Errorf("down"), Took: time.Second}.String()
	if !strings.HasPrefix(ok, "ok  ") || !strings.Contains(ok, "1.5ms") || !strings.HasSuffix(ok, "fine") {
		t.Errorf("ok line: %q", ok)
	}
	if !strings.HasPrefix(bad, "FAIL") || !strings.HasSuffix(bad, "down") {
		t.Errorf("fail line: %q", bad)
	}
}
