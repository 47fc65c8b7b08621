package credapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestSelftestPage: the self-test page exists only when selftest.enabled is on, never shadows
// an API path, and the API keeps answering beside it.
func TestSelftestPage(t *testing.T) {
	cases := []struct {
		name    string
		enabled bool
		path    string
		status  int
		body    string
	}{
		{"off by default", false, "/selftest/", http.StatusNotFound, `"error"`},
		{"on: the page", true, "/selftest/", http.StatusOK, "Switchboard self-test"},
		{"on: its script", true, "/selftest/selftest.js", http.StatusOK, "client-config"},
		{"on: the API still answers", true, "/v1/ice-servers", http.StatusOK, "iceServers"},
		{"on: other paths still 404", true, "/selftestx", http.StatusNotFound, `"error"`},
		{"on: /selftest redirects", true, "/selftest", http.StatusTemporaryRedirect, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.Selftest.Enabled = tc.enabled })
			rec := ts.do(t, http.MethodGet, tc.path, nil)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("GET %s: %d %.200q, want %d containing %q", tc.path, rec.Code, rec.Body.String(), tc.status, tc.body)
			}
		})
	}
}
