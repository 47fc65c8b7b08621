package credapi

import (
	"log/slog"
	"net/http"
	"net/url"
	"testing"
)

// discardWriter is the cheapest ResponseWriter, so the benchmark measures the handler itself
// (CORS, rate limit, parameters, HMAC, JSON) and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// BenchmarkHandler: one credential request per op with an allowed Origin and both rate limiters
// on (the buckets never empty: the limits are set far above the benchmark's rate).
func BenchmarkHandler(b *testing.B) {
	for _, tc := range []struct{ name, path, query string }{
		{"get_config", "/api/get-config", ""},
		{"ice_servers", "/v1/ice-servers", "ttl=3600"},
		{"client_config", "/v1/client-config", ""},
		{"turn_rest", "/", "service=turn&username=alice"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ts := newTestServer(b, func(c *Config) {
				c.RateLimit.PerMinute = 1e12
				c.RateLimit.Burst = 1_000_000
				c.RateLimit.GlobalPerSecond = 1e12
				c.RateLimit.GlobalBurst = 1_000_000
			})
			// Production logs at info, so the per-request debug line is skipped, as here.
			ts.log = slog.New(slog.DiscardHandler)
			r := &http.Request{
				Method:     "GET",
				URL:        &url.URL{Path: tc.path, RawQuery: tc.query},
				Header:     http.Header{"Origin": {testOrigin}},
				RemoteAddr: "192.0.2.1:1234",
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				ts.ServeHTTP(w, r)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}
