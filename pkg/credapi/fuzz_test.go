package credapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// FuzzQuery drives the handler with arbitrary query strings, form bodies and paths. Whatever
// arrives, the answer is a well-formed JSON body: a credential that verifies, within the TTL
// bounds, whose id is the (valid) username asked for or a generated one; or a known error.
func FuzzQuery(f *testing.F) {
	f.Add(uint8(0), "service=turn&username=alice&ttl=3600", "")
	f.Add(uint8(1), "ttl=-5&iceTransportPolicy=relay", "")
	f.Add(uint8(3), "", "service=turn&username=bob%2E1")
	f.Add(uint8(4), "username=a%3Ab&key=x", "")
	f.Add(uint8(2), "ttl=99999999999999999999&&&=&x", "")
	ts := newTestServer(f, func(c *Config) { c.RateLimit.PerMinute = 0 })
	paths := []string{"/v1/turn", "/v1/ice-servers", "/api/get-config", "/", "/v1/client-config"}
	errorCodes := map[string]bool{"bad_request": true, "bad_service": true, "bad_ttl": true, "bad_username": true, "bad_policy": true}
	f.Fuzz(func(t *testing.T, which uint8, rawQuery, body string) {
		path := paths[int(which)%len(paths)]
		method := "GET"
		if path == "/" || path == "/v1/turn" {
			if which&0x80 != 0 {
				method = "POST"
			}
		}
		r := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: rawQuery},
			Header:     http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			Body:       http.NoBody,
			RemoteAddr: "192.0.2.1:1234",
		}
		if method == "POST" {
			r.Body = ioNopCloser(body)
		}
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r.WithContext(t.Context()))
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("status %d: body is not a JSON object: %v: %q", w.Code, err, w.Body)
		}
		switch w.Code {
		case 200:
		case 400:
			if code, _ := m["error"].(string); !errorCodes[code] || len(m) != 2 {
				t.Fatalf("400 with unexpected body %v", m)
			}
			return
		default:
			t.Fatalf("status %d: %v", w.Code, m)
		}
		user, pass := credentialOf(m)
		exp, id, err := turncred.ParseUsername(user)
		if err != nil {
			t.Fatalf("username %q: %v", user, err)
		}
		if turncred.Password([]byte(testSecret), user) != pass {
			t.Fatal("password does not verify")
		}
		ttl := exp.Sub(testNow)
		if ttl < ts.cfg.TTLMin || ttl > ts.cfg.TTLMax {
			t.Fatalf("ttl %v outside [%v, %v]", ttl, ts.cfg.TTLMin, ts.cfg.TTLMax)
		}
		if !validUsername(id) {
			t.Fatalf("id %q breaks the username rule", id)
		}
		if vals, err := url.ParseQuery(rawQuery); err == nil && len(vals["username"]) == 1 && body == "" && id != vals["username"][0] {
			t.Fatalf("id %q, want the username parameter %q", id, vals["username"][0])
		}
	})
}

func credentialOf(m map[string]any) (user, pass string) {
	if servers, ok := m["iceServers"].([]any); ok {
		m = servers[len(servers)-1].(map[string]any)
	}
	user, _ = m["username"].(string)
	pass, _ = m["password"].(string)
	if pass == "" {
		pass, _ = m["credential"].(string)
	}
	return user, pass
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func ioNopCloser(s string) nopCloser { return nopCloser{strings.NewReader(s)} }
