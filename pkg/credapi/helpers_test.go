package credapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/config"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

var (
	testSecret = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	testNow    = time.Unix(1_700_000_000, 0)
	testOrigin = "https://chat.example.com"
	testSTUN   = "stun:turn.example.com:3478"
	testTURN   = []string{"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp", "turns:turn.example.com:5349?transport=tcp"}
)

func testConfig() Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Ops.Listen = "127.0.0.1:0"
	c.Auth.Secrets = []string{testSecret}
	c.ICE.URLs = append([]string{testSTUN}, testTURN...)
	c.Trackers = []string{"wss://tracker.example.com"}
	c.CORS.Origins = []string{testOrigin, "http://localhost:3000"}
	return c
}

type testServer struct {
	*Server
	reg  *prometheus.Registry
	logs *syncBuffer
	now  time.Time
}

// newTestServer builds a Server on a fixed clock; mutate adjusts the config first.
func newTestServer(t testing.TB, mutate func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	var p config.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, turncred.Static(cfg.Auth.Secrets...), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, reg: reg, logs: logs, now: testNow}
	s.now = func() time.Time { return ts.now }
	return ts
}

// do sends one request through the handler. Headers are "Name: value" strings.
func (ts *testServer) do(t testing.TB, method, target string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = "198.51.100.7:40000"
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		r.Header.Add(k, v)
	}
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	return w
}

// decodeObject decodes a JSON object, failing on anything else.
func decodeObject(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, body)
	}
	if dec.More() {
		t.Fatalf("trailing data after JSON object: %s", body)
	}
	return m
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func stringList(t *testing.T, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("want a JSON array of strings, got %T %v", v, v)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("array element %d is %T, want string", i, e)
		}
		out[i] = s
	}
	return out
}

type syncBuffer = testtool.SyncBuffer

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func headerIs(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	if got := h.Get(name); got != want {
		t.Errorf("header %s = %q, want %q", name, got, want)
	}
}
