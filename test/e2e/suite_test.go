package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

// suite is one scenario's fresh daemons plus the server for its test pages.
type suite struct {
	t        *testing.T
	secret   string
	turnd    *proc
	credapi  *proc
	pages    *httptest.Server
	turnAddr string // host:port of turnd (UDP and TCP)
	credURL  string // http://host:port of credapi

	mu       sync.Mutex // guards tracker across a restart
	tracker  *proc
	trackURL string
}

type suiteOpts struct {
	// allowLoopback opens 127.0.0.0/8 in turnd's peer policy: two browsers on one host relay to
	// each other's loopback relay addresses. Off, turnd keeps its production default.
	allowLoopback bool
	// apiKey, when set, is the one key credapi requires (api_keys).
	apiKey string
}

func startSuite(t *testing.T, o suiteOpts) *suite {
	t.Helper()
	root := testtool.RepoRoot()
	s := &suite{t: t, secret: newSecret()}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServer(http.Dir(filepath.Join(root, "test/e2e/pages"))))
	mux.Handle("GET /vendor/", http.StripPrefix("/vendor/", http.FileServer(http.Dir(filepath.Join(root, "test/e2e/node_modules")))))
	mux.HandleFunc("POST /control/restart-tracker", s.restartTracker)
	s.pages = httptest.NewServer(mux)
	t.Cleanup(s.pages.Close)

	turnArgs := []string{"--listen=127.0.0.1:0", "--realm=switchboard.e2e", "--relay.ip=127.0.0.1", "--udp.sockets=1"}
	if o.allowLoopback {
		turnArgs = append(turnArgs, "--peers.allow=127.0.0.0/8")
	}
	s.turnd = startProc(t, "turnd", []string{"SWITCHBOARD_TURND_AUTH_SECRETS=" + s.secret}, turnArgs...)
	s.turnAddr = s.turnd.addr("udp")

	s.tracker = startProc(t, "tracker", nil, "--listen=127.0.0.1:0", "--announce_interval=10s")
	s.trackURL = s.tracker.addr("url")

	credEnv := []string{"SWITCHBOARD_CREDAPI_AUTH_SECRETS=" + s.secret}
	if o.apiKey != "" {
		credEnv = append(credEnv, "SWITCHBOARD_CREDAPI_API_KEYS="+o.apiKey)
	}
	s.credapi = startProc(t, "credapi", credEnv,
		"--listen=127.0.0.1:0",
		fmt.Sprintf("--ice.urls=stun:%[1]s,turn:%[1]s?transport=udp,turn:%[1]s?transport=tcp", s.turnAddr),
		"--trackers="+s.trackURL,
		"--cors.origins="+s.pages.URL,
		"--rate_limit.per_minute=600",
		"--selftest.enabled=true")
	s.credURL = "http://" + s.credapi.addr("addr")
	// Registered last, so it runs first: the logs are complete up to here and still in memory.
	t.Cleanup(func() { s.assertNoSecretInLogs(t) })
	return s
}

// assertNoSecretInLogs: the shared secret never appears in any daemon's log.
func (s *suite) assertNoSecretInLogs(t *testing.T) {
	s.mu.Lock()
	procs := []*proc{s.turnd, s.credapi, s.tracker}
	s.mu.Unlock()
	for _, p := range procs {
		if strings.Contains(p.log(), s.secret) {
			t.Errorf("%s logged the shared secret", p.name)
		}
	}
}

// pageURL is the test page joining room through our tracker with ICE servers from credapi's
// endpoint (path), read in the given shape.
func (s *suite) pageURL(room, path, shape string) string {
	q := url.Values{"tracker": {s.trackerURL()}, "ice": {s.credURL + path}, "shape": {shape}, "room": {room}}
	return s.pages.URL + "/room.html?" + q.Encode()
}

func (s *suite) trackerURL() string { s.mu.Lock(); defer s.mu.Unlock(); return s.trackURL }

// restartTracker drops every tracker connection: it waits until the tracker holds a peer (so a
// page really was in the room), stops it, and starts a fresh one on the same port.
func (s *suite) restartTracker(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := waitPeers(r.Context(), s.tracker.addr("ops"), 1); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	opsAddr := s.tracker.addr("ops")
	s.tracker.stop(s.t)
	_, port, _ := net.SplitHostPort(s.tracker.addr("url")[len("ws://"):])
	// Both ports are given: an ephemeral ops port could be handed the service port the old
	// tracker just freed (seen once: "bind: address already in use").
	p, err := launch("tracker", nil, "--listen=127.0.0.1:"+port, "--ops.listen="+opsAddr, "--announce_interval=10s")
	if p != nil {
		old := s.tracker
		s.t.Cleanup(func() {
			if s.t.Failed() {
				s.t.Logf("tracker (before the restart) log:\n%s\ntracker (after) log:\n%s", old.log(), p.log())
			}
			p.stopLater()
		})
		s.tracker = p
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitPeers polls the tracker's /stats.json until it counts at least n peers.
func waitPeers(ctx context.Context, ops string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ops+"/stats.json", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var st struct {
				Peers int `json:"peersAll"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			_ = resp.Body.Close()
			if err == nil && st.Peers >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the tracker did not count %d peer(s) in time", n)
		case <-tick.C:
		}
	}
}
