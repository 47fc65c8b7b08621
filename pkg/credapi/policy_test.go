package credapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClampTTL(t *testing.T) {
	def, lo, hi := 24*time.Hour, 5*time.Minute, 48*time.Hour
	tests := []struct {
		raw     string
		want    time.Duration
		wantErr bool
	}{
		{"", def, false},
		{"3600", time.Hour, false},
		{"300", lo, false},
		{"299", lo, false},
		{"0", lo, false},
		{"-1", lo, false},
		{"172800", hi, false},
		{"172801", hi, false},
		{"99999999999999999999999", hi, false},
		{"-99999999999999999999999", lo, false},
		{"1h", 0, true},
		{"1.5", 0, true},
		{" 60", 0, true},
		{"0x10", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := clampTTL(tt.raw, def, lo, hi)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("clampTTL(%q) = %v, %v; want %v, err=%v", tt.raw, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestUsernameParam(t *testing.T) {
	tests := []struct {
		param string
		ok    bool
	}{
		{"alice", true},
		{"A.b_c-9", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"a:b", false},     // would shift coturn's timestamp split
		{"my+room", false}, // '+' decodes to a space
		{"r%C3%A9union", false},
		{"room%2Fname", false},
		{"%00", false},
		{"a%22b", false}, // a quote must never reach the JSON
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			ts := newTestServer(t, nil)
			w := ts.do(t, "GET", "/v1/turn?username="+tt.param, nil)
			if tt.ok {
				if w.Code != 200 {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				m := decodeObject(t, w.Body.Bytes())
				checkCredential(t, m["username"].(string), m["password"].(string), 24*time.Hour, tt.param)
				return
			}
			if w.Code != 400 {
				t.Fatalf("status %d, want 400: %s", w.Code, w.Body)
			}
			m := decodeObject(t, w.Body.Bytes())
			if m["error"] != "bad_username" {
				t.Errorf("error = %v, want bad_username", m["error"])
			}
			if tt.param != "" && strings.Contains(w.Body.String(), tt.param) {
				t.Error("the refused username must not be echoed back")
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, method, target string
		status               int
		code, allow          string
	}{
		{"unknown path", "GET", "/v1/nope", 404, "not_found", ""},
		{"subpath", "GET", "/v1/turn/x", 404, "not_found", ""},
		{"root without service", "GET", "/", 400, "bad_service", ""},
		{"wrong service", "GET", "/?service=stun", 400, "bad_service", ""},
		{"v1 wrong service", "GET", "/v1/turn?service=stun", 400, "bad_service", ""},
		{"bad ttl", "GET", "/v1/ice-servers?ttl=abc", 400, "bad_ttl", ""},
		{"duplicate ttl", "GET", "/v1/turn?ttl=60&ttl=86400", 400, "bad_request", ""},
		{"bad escape", "GET", "/v1/turn?username=%zz", 400, "bad_request", ""},
		{"long query", "GET", "/v1/turn?x=" + strings.Repeat("a", 3000), 400, "bad_request", ""},
		{"POST to get-config", "POST", "/api/get-config", 405, "method_not_allowed", "GET, OPTIONS"},
		{"DELETE turn", "DELETE", "/v1/turn", 405, "method_not_allowed", "GET, POST, OPTIONS"},
		{"HEAD ice-servers", "HEAD", "/v1/ice-servers", 405, "", "GET, OPTIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			w := ts.do(t, tt.method, tt.target, nil)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			commonHeaders(t, w.Header())
			headerIs(t, w.Header(), "Allow", tt.allow)
			if tt.code == "" {
				return
			}
			m := decodeObject(t, w.Body.Bytes())
			if m["error"] != tt.code {
				t.Errorf("error = %v, want %s", m["error"], tt.code)
			}
			if msg, _ := m["message"].(string); msg == "" {
				t.Error("message is empty; errors must say what to do")
			}
			if len(m) != 2 {
				t.Errorf("error body fields %v, want exactly error and message", keysOf(m))
			}
		})
	}
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name          string
		allowNoOrigin bool
		method        string
		origin        string
		status        int
		acao          string
	}{
		{"allowed origin", true, "GET", testOrigin, 200, testOrigin},
		{"second allowed origin", true, "GET", "http://localhost:3000", 200, "http://localhost:3000"},
		{"disallowed origin", true, "GET", "https://evil.example", 403, ""},
		{"scheme differs", true, "GET", "http://chat.example.com", 403, ""},
		{"port differs", true, "GET", "https://chat.example.com:8443", 403, ""},
		{"trailing slash", true, "GET", testOrigin + "/", 403, ""},
		{"case differs", true, "GET", "https://CHAT.example.com", 403, ""},
		{"null origin", true, "GET", "null", 403, ""},
		{"no origin allowed", true, "GET", "", 200, ""},
		{"no origin refused", false, "GET", "", 403, ""},
		{"preflight allowed", true, "OPTIONS", testOrigin, 204, testOrigin},
		{"preflight disallowed", true, "OPTIONS", "https://evil.example", 403, ""},
		{"plain OPTIONS", false, "OPTIONS", "", 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.CORS.AllowNoOrigin = tt.allowNoOrigin })
			hdr := []string{"Access-Control-Request-Method: GET", "Access-Control-Request-Headers: authorization"}
			if tt.origin != "" {
				hdr = append(hdr, "Origin: "+tt.origin)
			}
			w := ts.do(t, tt.method, "/v1/ice-servers", nil, hdr...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			h := w.Header()
			headerIs(t, h, "Access-Control-Allow-Origin", tt.acao)
			headerIs(t, h, "Vary", "Origin")
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("never Access-Control-Allow-Credentials")
			}
			if tt.status == 403 {
				for _, leak := range []string{`"credential"`, `"password"`, `"username"`, "turn:"} {
					if strings.Contains(w.Body.String(), leak) {
						t.Errorf("refused response contains %q: %s", leak, w.Body)
					}
				}
			}
			if tt.method == "OPTIONS" && tt.status == 204 && tt.origin != "" {
				headerIs(t, h, "Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				headerIs(t, h, "Access-Control-Allow-Headers", "Authorization, Content-Type")
				headerIs(t, h, "Access-Control-Max-Age", "600")
			}
		})
	}
	ts := newTestServer(t, nil)
	ts.do(t, "GET", "/v1/turn", nil, "Origin: https://evil.example")
	if got := testutil.ToFloat64(ts.m.refusals[reasonOrigin]); got != 1 {
		t.Errorf("refusals{reason=origin_not_allowed} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(ts.m.issued); got != 0 {
		t.Errorf("a refused origin must not mint: issued = %v", got)
	}
}

func TestAPIKeys(t *testing.T) {
	key := "k-0123456789abcdef-key"
	tests := []struct {
		name   string
		target string
		header string
		status int
	}{
		{"missing", "/v1/turn", "", 403},
		{"wrong param", "/v1/turn?key=k-0123456789abcdef-kez", "", 403},
		{"prefix of key", "/v1/turn?key=k-0123456789abcdef", "", 403},
		{"param", "/v1/turn?key=" + key, "", 200},
		{"bearer", "/v1/turn", "Authorization: Bearer " + key, 200},
		{"bearer lower case", "/v1/turn", "Authorization: bearer " + key, 200},
		{"basic scheme", "/v1/turn", "Authorization: Basic " + key, 403},
		{"empty bearer", "/v1/turn", "Authorization: Bearer ", 403},
		{"second key", "/api/get-config?key=other-key-0123456789", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.APIKeys = []string{key, "other-key-0123456789"} })
			var hdr []string
			if tt.header != "" {
				hdr = append(hdr, tt.header)
			}
			w := ts.do(t, "GET", tt.target, nil, hdr...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 403 {
				if m := decodeObject(t, w.Body.Bytes()); m["error"] != "bad_key" {
					t.Errorf("error = %v, want bad_key", m["error"])
				}
				if strings.Contains(w.Body.String(), "password") {
					t.Error("no credential without a key")
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.RateLimit.PerMinute = 60
		c.RateLimit.Burst = 3
		c.TrustedProxies = []string{"10.0.0.0/8"}
	})
	req := func(remote string, xff ...string) int {
		r, _ := http.NewRequest("GET", "/v1/ice-servers", nil)
		r.RemoteAddr = remote
		for _, x := range xff {
			r.Header.Add("X-Forwarded-For", x)
		}
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		if w.Code == 429 {
			headerIs(t, w.Header(), "Retry-After", "1")
			if m := decodeObject(t, w.Body.Bytes()); m["error"] != "rate_limited" {
				t.Errorf("error = %v", m["error"])
			}
		}
		return w.Code
	}
	expect := func(name string, got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("%s: status %d, want %d", name, got, want)
		}
	}
	for i := range 3 {
		expect(fmt.Sprintf("burst %d", i), req("192.0.2.1:1000"), 200)
	}
	expect("over burst", req("192.0.2.1:1001"), 429)
	expect("other client", req("192.0.2.2:1000"), 200)

	// IPv6: the same /64 is one client; another /64 is another.
	for range 3 {
		req("[2001:db8:1:2::1]:1000")
	}
	expect("same /64", req("[2001:db8:1:2:ffff::9]:1000"), 429)
	expect("other /64", req("[2001:db8:1:3::1]:1000"), 200)
	expect("v4-mapped is v4", req("[::ffff:192.0.2.1]:1000"), 429)

	// X-Forwarded-For counts only behind a trusted proxy; the rightmost untrusted hop wins.
	for range 3 {
		req("10.1.1.1:80", "203.0.113.9")
	}
	expect("trusted proxy, same client", req("10.2.2.2:80", "203.0.113.9"), 429)
	expect("trusted proxy, spoofed left entry", req("10.2.2.2:80", "1.2.3.4, 203.0.113.9, 10.9.9.9"), 429)
	expect("trusted proxy, other client", req("10.2.2.2:80", "203.0.113.10"), 200)
	for range 3 {
		req("192.0.2.50:80", "203.0.113.11")
	}
	expect("untrusted peer's XFF ignored", req("192.0.2.50:80", "203.0.113.12"), 429)

	// Tokens come back at the configured rate.
	ts.now = ts.now.Add(time.Second)
	expect("after refill", req("192.0.2.1:1000"), 200)
	expect("refill is one token", req("192.0.2.1:1000"), 429)

	if got := testutil.ToFloat64(ts.m.refusals[reasonRateLimited]); got < 5 {
		t.Errorf("refusals{reason=rate_limited} = %v", got)
	}
}

func TestGlobalRateLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.RateLimit.PerMinute = 60
		c.RateLimit.Burst = 1
		c.RateLimit.GlobalPerSecond = 2
		c.RateLimit.GlobalBurst = 3
	})
	req := func(remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/ice-servers", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		name, remote, wantErr string
		want                  int
	}{
		{"first client", "192.0.2.1:1", "", 200},
		// Refused by its own bucket: this must not spend the shared tokens.
		{"first client again", "192.0.2.1:1", "rate_limited", 429},
		{"first client a third time", "192.0.2.1:1", "rate_limited", 429},
		{"second client", "192.0.2.2:1", "", 200},
		{"third client", "192.0.2.3:1", "", 200},
		{"fourth client, global burst spent", "192.0.2.4:1", "server_busy", 429},
	}
	for _, tt := range tests {
		w := req(tt.remote)
		if w.Code != tt.want {
			t.Fatalf("%s: status %d, want %d: %s", tt.name, w.Code, tt.want, w.Body)
		}
		if tt.want == 429 {
			headerIs(t, w.Header(), "Retry-After", "1")
			if m := decodeObject(t, w.Body.Bytes()); m["error"] != tt.wantErr {
				t.Errorf("%s: error = %v, want %s", tt.name, m["error"], tt.wantErr)
			}
		}
	}
	if got := testutil.ToFloat64(ts.m.refusals[reasonGlobalLimited]); got != 1 {
		t.Errorf("refusals{reason=global_rate_limited} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(ts.m.refusals[reasonRateLimited]); got != 2 {
		t.Errorf("refusals{reason=rate_limited} = %v, want 2", got)
	}
	// Half a second refills one global token (2 per second).
	ts.now = ts.now.Add(500 * time.Millisecond)
	if w := req("192.0.2.5:1"); w.Code != 200 {
		t.Fatalf("after refill: status %d: %s", w.Code, w.Body)
	}
	if w := req("192.0.2.6:1"); w.Code != 429 {
		t.Fatalf("refill is one token: status %d", w.Code)
	}
	if newGlobalLimiter(0, 10) != nil {
		t.Fatal("global_per_second 0 must turn the global limit off")
	}
}

// TestGlobalRetryAfter: Retry-After says when the shared bucket has a token again.
func TestGlobalRetryAfter(t *testing.T) {
	g := newGlobalLimiter(0.2, 1) // one token per 5 s
	if !g.allow(testNow).ok {
		t.Fatal("first request must pass")
	}
	res := g.allow(testNow)
	if res.ok || res.retry != 5*time.Second {
		t.Fatalf("second request: %+v, want refused with a 5s wait", res)
	}
	h := http.Header{}
	setRetryAfter(h, res.retry)
	headerIs(t, h, "Retry-After", "5")
	setRetryAfter(h, time.Millisecond)
	headerIs(t, h, "Retry-After", "1")
}

func TestRateLimiterBounded(t *testing.T) {
	l := newLimiter(60, 1, 64)
	now := testNow
	overflowed := 0
	for i := range 10_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if res := l.allow(netip.PrefixFrom(a, 32), now); res.overflow {
			overflowed++
		}
	}
	if n := l.clients(); n > 64 {
		t.Fatalf("limiter holds %d clients, max_clients is 64", n)
	}
	if overflowed == 0 {
		t.Fatal("a full limiter must send newcomers to the shared overflow bucket")
	}
	// Once buckets have refilled they are swept and new clients get their own again.
	now = now.Add(time.Minute)
	a := netip.MustParsePrefix("192.0.2.1/32")
	if res := l.allow(a, now); !res.ok || res.overflow {
		t.Fatalf("after refill: %+v, want a fresh bucket", res)
	}
	if l := newLimiter(0, 1, 64); l != nil {
		t.Fatal("per_minute 0 must turn the limiter off")
	}
}

func TestClientKey(t *testing.T) {
	k := clientKeyer{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}, ipv6Prefix: 64}
	tests := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5", nil, "192.0.2.1/32"},
		{"[2001:db8::1]:5", nil, "2001:db8::/64"},
		{"[fe80::1%eth0]:5", nil, "fe80::/64"},
		{"10.0.0.1:5", []string{"198.51.100.1"}, "198.51.100.1/32"},
		{"10.0.0.1:5", []string{"198.51.100.1, 10.0.0.2"}, "198.51.100.1/32"},
		{"10.0.0.1:5", []string{"198.51.100.1", "10.0.0.2"}, "198.51.100.1/32"},
		{"10.0.0.1:5", []string{"garbage, 198.51.100.1"}, "198.51.100.1/32"},
		{"10.0.0.1:5", []string{"198.51.100.1, garbage"}, "10.0.0.1/32"},
		{"10.0.0.1:5", []string{"10.0.0.3"}, "10.0.0.3/32"},
		{"[fd00::1]:5", []string{"2001:db8:5::7"}, "2001:db8:5::/64"},
		{"192.0.2.1:5", []string{"198.51.100.1"}, "192.0.2.1/32"},
		{"pipe", nil, "invalid Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.remote+strings.Join(tt.xff, "|"), func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, x := range tt.xff {
				r.Header.Add("X-Forwarded-For", x)
			}
			if got := k.key(r).String(); got != tt.want {
				t.Fatalf("key = %s, want %s", got, tt.want)
			}
		})
	}
}
