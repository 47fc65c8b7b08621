package credapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// generatedUser is "<expiry>:<id>" with a server-generated id.
var generatedUser = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]{16}$`)

// checkCredential holds username/password to the TURN REST rules: the expiry is now+ttl, the
// id is generated (or the given one), and the password is what coturn computes with our secret.
func checkCredential(t *testing.T, username, password string, ttl time.Duration, wantID string) {
	t.Helper()
	exp, id, err := turncred.ParseUsername(username)
	if err != nil {
		t.Fatalf("username %q: %v", username, err)
	}
	if want := testNow.Add(ttl); !exp.Equal(want) {
		t.Errorf("username expiry = %v, want now+ttl = %v", exp, want)
	}
	if wantID == "" && !generatedUser.MatchString(username) {
		t.Errorf("username %q: want <expiry>:<16-char generated id>", username)
	}
	if wantID != "" && id != wantID {
		t.Errorf("username id = %q, want %q", id, wantID)
	}
	if want := turncred.Password([]byte(testSecret), username); password != want {
		t.Errorf("password = %q, want base64(HMAC-SHA1(secret, username)) = %q", password, want)
	}
}

// commonHeaders are on every credential response.
func commonHeaders(t *testing.T, h http.Header) {
	t.Helper()
	// ChitChatter rejects a response whose content-type lacks application/json.
	if ct := h.Get("Content-Type"); !strings.Contains(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	headerIs(t, h, "Cache-Control", "no-store")
	headerIs(t, h, "X-Content-Type-Options", "nosniff")
	headerIs(t, h, "Vary", "Origin")
	if h.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("Access-Control-Allow-Credentials must never be sent")
	}
}

// TestGetConfigShape: ChitChatter's useTurnConfig.ts isRTCIceServer: an object whose urls is a
// string or array and whose username/credential are strings; stun and turn in one object
// because its list replaces trystero's default STUN servers (research §3.2).
func TestGetConfigShape(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(t, "GET", "/api/get-config", nil, "Origin: "+testOrigin, "Accept: application/json")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	commonHeaders(t, w.Header())
	headerIs(t, w.Header(), "Access-Control-Allow-Origin", testOrigin)
	m := decodeObject(t, w.Body.Bytes())
	if got, want := keysOf(m), []string{"credential", "urls", "username"}; !slices.Equal(got, want) {
		t.Fatalf("fields = %v, want exactly %v (a bare RTCIceServer, not {iceServers})", got, want)
	}
	if got, want := stringList(t, m["urls"]), append([]string{testSTUN}, testTURN...); !slices.Equal(got, want) {
		t.Errorf("urls = %v, want %v", got, want)
	}
	user, _ := m["username"].(string)
	cred, _ := m["credential"].(string)
	checkCredential(t, user, cred, 24*time.Hour, "")
}

// TestICEServersShape: {"iceServers":[{"urls":[stun]},{"urls":[turn],"username","credential"}],
// "ttl":N,"expiresAt":RFC3339} (contract; Cloudflare's current shape plus lifetime).
func TestICEServersShape(t *testing.T) {
	for _, path := range []string{"/v1/ice-servers", "/v1/client-config"} {
		t.Run(path, func(t *testing.T) {
			ts := newTestServer(t, nil)
			w := ts.do(t, "GET", path+"?ttl=3600", nil, "Origin: "+testOrigin)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			commonHeaders(t, w.Header())
			m := decodeObject(t, w.Body.Bytes())
			want := []string{"expiresAt", "iceServers", "iceTransportPolicy", "ttl"}
			if path == "/v1/client-config" {
				want = []string{"expiresAt", "iceServers", "iceTransportPolicy", "trackers", "ttl"}
			}
			if got := keysOf(m); !slices.Equal(got, want) {
				t.Fatalf("fields = %v, want %v", got, want)
			}
			var servers []map[string]any
			raw, _ := json.Marshal(m["iceServers"])
			if err := json.Unmarshal(raw, &servers); err != nil || len(servers) != 2 {
				t.Fatalf("iceServers = %s, want an array of two RTCIceServer objects", raw)
			}
			if got := keysOf(servers[0]); !slices.Equal(got, []string{"urls"}) {
				t.Errorf("iceServers[0] fields = %v, want only urls (STUN needs no credential)", got)
			}
			if got := stringList(t, servers[0]["urls"]); !slices.Equal(got, []string{testSTUN}) {
				t.Errorf("iceServers[0].urls = %v", got)
			}
			if got := keysOf(servers[1]); !slices.Equal(got, []string{"credential", "urls", "username"}) {
				t.Errorf("iceServers[1] fields = %v", got)
			}
			if got := stringList(t, servers[1]["urls"]); !slices.Equal(got, testTURN) {
				t.Errorf("iceServers[1].urls = %v, want %v", got, testTURN)
			}
			user, _ := servers[1]["username"].(string)
			cred, _ := servers[1]["credential"].(string)
			checkCredential(t, user, cred, time.Hour, "")
			if m["ttl"] != json.Number("3600") {
				t.Errorf("ttl = %v, want the number 3600", m["ttl"])
			}
			if m["iceTransportPolicy"] != "all" {
				t.Errorf("iceTransportPolicy = %v, want all", m["iceTransportPolicy"])
			}
			exp, err := time.Parse(time.RFC3339, m["expiresAt"].(string))
			if err != nil || !exp.Equal(testNow.Add(time.Hour)) {
				t.Errorf("expiresAt = %v (%v), want RFC 3339 of now+ttl", m["expiresAt"], err)
			}
			if path == "/v1/client-config" {
				if got := stringList(t, m["trackers"]); !slices.Equal(got, []string{"wss://tracker.example.com"}) {
					t.Errorf("trackers = %v", got)
				}
			}
		})
	}
}

func TestICEServersRelayPolicy(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(t, "GET", "/v1/ice-servers?iceTransportPolicy=relay", nil)
	m := decodeObject(t, w.Body.Bytes())
	if m["iceTransportPolicy"] != "relay" {
		t.Errorf("iceTransportPolicy = %v", m["iceTransportPolicy"])
	}
	if n := len(m["iceServers"].([]any)); n != 1 {
		t.Errorf("relay policy: %d ice servers, want only the TURN server", n)
	}
	if w := ts.do(t, "GET", "/v1/ice-servers?iceTransportPolicy=none", nil); w.Code != 400 {
		t.Errorf("bad policy: status %d, want 400", w.Code)
	}
}

// TestTURNRESTShape: draft-uberti-behave-turn-rest-00 §2.2 {username,password,ttl,uris}, with
// username "<expiry>:<username param>" (research §1.3), for GET and POST, on / and /v1/turn.
func TestTURNRESTShape(t *testing.T) {
	tests := []struct {
		name, method, target, body, ctype string
		wantID                            string
		ttl                               time.Duration
	}{
		{"draft GET", "GET", "/?service=turn&username=mbzrxpgjys", "", "", "mbzrxpgjys", 24 * time.Hour},
		{"draft POST query", "POST", "/?service=turn&username=fred&ttl=600", "", "", "fred", 10 * time.Minute},
		{"POST form body", "POST", "/v1/turn", "service=turn&username=bob", "application/x-www-form-urlencoded", "bob", 24 * time.Hour},
		{"v1 generated id", "GET", "/v1/turn", "", "", "", 24 * time.Hour},
		{"v1 explicit service", "GET", "/v1/turn?service=turn&ttl=86400", "", "", "", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			var hdr []string
			if tt.ctype != "" {
				hdr = append(hdr, "Content-Type: "+tt.ctype)
			}
			w := ts.do(t, tt.method, tt.target, strings.NewReader(tt.body), hdr...)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			commonHeaders(t, w.Header())
			m := decodeObject(t, w.Body.Bytes())
			if got, want := keysOf(m), []string{"password", "ttl", "uris", "username"}; !slices.Equal(got, want) {
				t.Fatalf("fields = %v, want %v", got, want)
			}
			if got := stringList(t, m["uris"]); !slices.Equal(got, testTURN) {
				t.Errorf("uris = %v, want only the TURN URIs %v", got, testTURN)
			}
			if m["ttl"] != json.Number(strconv.Itoa(int(tt.ttl.Seconds()))) {
				t.Errorf("ttl = %v, want %v", m["ttl"], tt.ttl.Seconds())
			}
			checkCredential(t, m["username"].(string), m["password"].(string), tt.ttl, tt.wantID)
		})
	}
}

// TestContractVector: the contract's test vector goes through the same Password function.
func TestContractVector(t *testing.T) {
	if got := turncred.Password([]byte("foobar"), "1599491771"); got != "Tpz/nKkyvX/vMSLKvL4sbtBt8Vs=" {
		t.Fatal(got)
	}
	if got := turncred.Password([]byte("north"), "12334939:mbzrxpgjys"); got != "Iq7YXkRon8YXJfdN1Ke9EZOw1UE=" {
		t.Fatal(got)
	}
}

func TestNoSTUNConfigured(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.ICE.URLs = testTURN[:1] })
	m := decodeObject(t, ts.do(t, "GET", "/v1/ice-servers", nil).Body.Bytes())
	if n := len(m["iceServers"].([]any)); n != 1 {
		t.Errorf("%d ice servers without a stun: URI, want 1", n)
	}
	m = decodeObject(t, ts.do(t, "GET", "/api/get-config", nil).Body.Bytes())
	if got := stringList(t, m["urls"]); !slices.Equal(got, testTURN[:1]) {
		t.Errorf("urls = %v", got)
	}
}
