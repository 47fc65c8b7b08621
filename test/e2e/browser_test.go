package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

const chromiumPath = "/usr/bin/chromium"

// browserTools are the outside tools every browser scenario needs.
func browserTools(t *testing.T) string {
	t.Helper()
	node := testtool.Require(t, "node")
	testtool.RequireFile(t, chromiumPath, "apt-get install chromium (.ci/run does)")
	dir := filepath.Join(testtool.RepoRoot(), "test/e2e")
	for _, m := range []string{"playwright-core", "@trystero-p2p/torrent", "@trystero-p2p/core"} {
		testtool.RequireFile(t, filepath.Join(dir, "node_modules", m, "package.json"), "run `npm ci --ignore-scripts` in test/e2e")
	}
	return node
}

// candidate and pair mirror what room.js reports from getStats().
type candidate struct {
	CandidateType string `json:"candidateType"`
	Address       string `json:"address"`
	Port          int    `json:"port"`
	Protocol      string `json:"protocol"`
	RelayProtocol string `json:"relayProtocol"`
	URL           string `json:"url"`
}

type pair struct {
	State  string     `json:"state"`
	Local  *candidate `json:"local"`
	Remote *candidate `json:"remote"`
}

// result is the driver's one JSON line.
type result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Sent  string `json:"sent"`
	Got   *struct {
		Size   int    `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"got"`
	BinaryMs int64 `json:"binaryMs"`
	Pairs    []*pair
	Peers    []int `json:"peers"`
	Pages    []struct {
		Peers      int      `json:"peers"`
		JoinErrors []string `json:"joinErrors"`
		Failed     int      `json:"failed"`
	} `json:"pages"`
	Video *struct {
		FramesDecoded int `json:"framesDecoded"`
		Width         int `json:"width"`
		Height        int `json:"height"`
	} `json:"video"`
	Selftest []struct {
		RelayFrom    []string `json:"relayFrom"`
		NoRelayFrom  []string `json:"noRelayFrom"`
		GatherErrors []string `json:"gatherErrors"`
		Tracker      struct {
			OK   bool   `json:"ok"`
			Text string `json:"text"`
		} `json:"tracker"`
		Via      string   `json:"via"`
		Statuses []string `json:"statuses"`
	} `json:"selftest"`
	raw string
}

// drive runs one driver.mjs scenario with a time limit and returns its result; any failure
// fails the test.
func drive(t *testing.T, node string, s *suite, scenario string, limit time.Duration, pages []string, extra map[string]any) result {
	t.Helper()
	r, failure := tryDrive(t, node, s, scenario, limit, pages, extra)
	if failure != "" {
		t.Fatal(failure)
	}
	return r
}

// tryDrive runs the scenario and returns its result, or a description of its failure.
func tryDrive(t *testing.T, node string, s *suite, scenario string, limit time.Duration, pages []string, extra map[string]any) (result, string) {
	t.Helper()
	spec := map[string]any{"scenario": scenario, "pages": pages, "chromium": chromiumPath,
		"timeoutMs": limit.Milliseconds(), "control": s.pages.URL + "/control"}
	for k, v := range extra {
		spec[k] = v
	}
	b, _ := json.Marshal(spec)
	ctx, cancel := context.WithTimeout(t.Context(), limit+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "driver.mjs", string(b))
	cmd.Dir = filepath.Join(testtool.RepoRoot(), "test/e2e")
	// Chromium writes to ~/.config and ~/.cache whatever the profile: keep that in the test's
	// scratch directory.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home+"/config", "XDG_CACHE_HOME="+home+"/cache")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Chromium's processes share node's process group: on a timeout, kill them all, and never
	// leave a browser behind even when node exits early.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	t.Logf("%s: driver ran %s", scenario, time.Since(start).Round(time.Millisecond))
	var r result
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	r.raw = lines[len(lines)-1]
	if jerr := json.Unmarshal([]byte(r.raw), &r); jerr != nil {
		return r, fmt.Sprintf("%s: driver failed (%v) without a result:\n%s\n%s", scenario, err, stdout.String(), tail(stderr.String(), 200))
	}
	if !r.OK {
		return r, fmt.Sprintf("%s: %s\nresult: %s\nbrowser console:\n%s", scenario, r.Error, r.raw, tail(stderr.String(), 200))
	}
	return r, ""
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// assertRelayed checks that a connection's selected pair runs through turnd: a local relay
// candidate obtained from turnd's address, on the relay's address.
func assertRelayed(t *testing.T, s *suite, p *pair) {
	t.Helper()
	if p == nil || p.Local == nil || p.Remote == nil {
		t.Fatalf("no selected candidate pair in getStats(): %+v", p)
	}
	if p.Local.CandidateType != "relay" || p.Remote.CandidateType != "relay" {
		t.Errorf("selected pair is %s→%s, want relay→relay", p.Local.CandidateType, p.Remote.CandidateType)
	}
	if !strings.Contains(p.Local.URL, s.turnAddr) {
		t.Errorf("local relay candidate came from %q, want turnd at %s", p.Local.URL, s.turnAddr)
	}
	if p.Local.Address != "127.0.0.1" {
		t.Errorf("local relay candidate address %s, want turnd's relay.ip 127.0.0.1", p.Local.Address)
	}
}

const binaryBytes = 16 << 20

func TestBrowsers(t *testing.T) {
	node := browserTools(t)

	for _, shape := range []struct{ name, path, shape string }{
		{"two peers, trystero ice-servers", "/v1/ice-servers", "ice-servers"},
		{"two peers, ChitChatter get-config", "/api/get-config", "get-config"},
	} {
		t.Run(shape.name, func(t *testing.T) {
			s := startSuite(t, suiteOpts{allowLoopback: true})
			before := s.turnd.metric(t, "switchboard_turn_relayed_bytes_total")
			pages := []string{s.pageURL("pair", shape.path, shape.shape), s.pageURL("pair", shape.path, shape.shape)}
			r := drive(t, node, s, "pair", 90*time.Second, pages, map[string]any{"binaryBytes": binaryBytes})
			if r.Got == nil || r.Got.Size != binaryBytes || r.Got.SHA256 != r.Sent {
				t.Errorf("binary: sent %d bytes with SHA-256 %s, received %+v", binaryBytes, r.Sent, r.Got)
			}
			t.Logf("16 MiB arrived in %d ms through the relay", r.BinaryMs)
			for _, p := range r.Pairs {
				assertRelayed(t, s, p)
			}
			// Both directions of the file crossed turnd (sent to the relay and out again).
			if relayed := s.turnd.metric(t, "switchboard_turn_relayed_bytes_total") - before; relayed < binaryBytes {
				t.Errorf("turnd relayed %.0f bytes, want at least the %d-byte file", relayed, binaryBytes)
			}
		})
	}

	t.Run("four peers in one room", func(t *testing.T) {
		var s *suite
		var r result
		for attempt := 1; ; attempt++ {
			s = startSuite(t, suiteOpts{allowLoopback: true})
			var pages []string
			for range 4 {
				pages = append(pages, s.pageURL("group", "/v1/ice-servers", "ice-servers"))
			}
			var failure string
			if r, failure = tryDrive(t, node, s, "group", 120*time.Second, pages, nil); failure == "" {
				break
			}
			// trystero 0.25.4 sometimes never activates one peer of a connected pair: its
			// "handshake timed out" while every RTCPeerConnection reports connected (about 1 run
			// in 10 here). That is the client library, not the servers: retry once, loudly.
			if attempt == 1 && strings.Contains(failure, "handshake timed out") {
				t.Logf("attempt 1 hit trystero's handshake race; retrying once with fresh daemons. First failure:\n%s", failure)
				continue
			}
			t.Fatal(failure)
		}
		for i, n := range r.Peers {
			if n != 3 {
				t.Errorf("peer %d sees %d others, want 3", i, n)
			}
		}
		for _, p := range r.Pairs {
			assertRelayed(t, s, p)
		}
	})

	t.Run("fake camera video over the relay", func(t *testing.T) {
		s := startSuite(t, suiteOpts{allowLoopback: true})
		pages := []string{s.pageURL("video", "/v1/ice-servers", "ice-servers"), s.pageURL("video", "/v1/ice-servers", "ice-servers")}
		r := drive(t, node, s, "video", 90*time.Second, pages, nil)
		if r.Video == nil || r.Video.FramesDecoded < 30 || r.Video.Width == 0 {
			t.Errorf("video: %+v, want >= 30 decoded frames with a picture size", r.Video)
		}
		t.Logf("video: %+v", r.Video)
		for _, p := range r.Pairs {
			assertRelayed(t, s, p)
		}
	})

	t.Run("tracker restart, the room is found again", func(t *testing.T) {
		s := startSuite(t, suiteOpts{allowLoopback: true})
		pages := []string{s.pageURL("rejoin", "/v1/ice-servers", "ice-servers"), s.pageURL("rejoin", "/v1/ice-servers", "ice-servers")}
		r := drive(t, node, s, "rejoin", 90*time.Second, pages, nil)
		for _, p := range r.Pairs {
			assertRelayed(t, s, p)
		}
	})

	for _, tc := range []struct{ name, apiKey string }{
		{"credapi self-test page in two tabs", ""},
		{"credapi self-test page with an API key", "e2e-api-key-0123456789abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSuite(t, suiteOpts{allowLoopback: true, apiKey: tc.apiKey})
			page := s.credURL + "/selftest/#room=e2e"
			if tc.apiKey != "" {
				page += "&key=" + tc.apiKey
				// Without the key credapi refuses, so the page really used it.
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.credURL+"/v1/client-config", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
					t.Fatalf("credapi answered %s without the API key; want a refusal", resp.Status)
				}
			}
			r := drive(t, node, s, "selftest", 90*time.Second, []string{page}, nil)
			for i, p := range r.Selftest {
				t.Logf("tab %d: %+v", i, p)
				if len(p.RelayFrom) != 2 || len(p.NoRelayFrom) != 0 {
					t.Errorf("tab %d: relay candidates from %v, none from %v; want both TURN URIs", i, p.RelayFrom, p.NoRelayFrom)
				}
				if !p.Tracker.OK {
					t.Errorf("tab %d: tracker check failed: %s", i, p.Tracker.Text)
				}
				if !strings.HasPrefix(p.Via, "relay 127.0.0.1:") || !strings.Contains(p.Via, s.turnAddr) {
					t.Errorf("tab %d: chat went via %q, want a relay candidate from turnd at %s", i, p.Via, s.turnAddr)
				}
				for _, st := range p.Statuses {
					if strings.Contains(st, "fail") {
						t.Errorf("tab %d shows a failure: %s", i, st)
					}
				}
			}
		})
	}

	t.Run("default peer policy refuses loopback relays", func(t *testing.T) {
		s := startSuite(t, suiteOpts{allowLoopback: false})
		pages := []string{s.pageURL("refused", "/v1/ice-servers", "ice-servers"), s.pageURL("refused", "/v1/ice-servers", "ice-servers")}
		r := drive(t, node, s, "refused", 60*time.Second, pages, nil)
		failures := 0
		for i, p := range r.Pages {
			if p.Peers != 0 {
				t.Errorf("page %d connected to %d peers although turnd must refuse loopback peers", i, p.Peers)
			}
			failures += p.Failed + len(p.JoinErrors)
		}
		if failures == 0 {
			t.Errorf("no failed connection or join error; result %s", r.raw)
		}
		t.Logf("refused: %s", r.raw)
		if denied := s.turnd.metric(t, "switchboard_turn_permissions_denied_total"); denied == 0 {
			t.Errorf("turnd counted no denied permission; the refusal did not come from its peer policy")
		}
		if allocs := s.turnd.metric(t, "switchboard_turn_allocations_created_total"); allocs == 0 {
			t.Errorf("no allocation was made: the browsers never reached turnd, so the test proves nothing")
		}
	})
}
