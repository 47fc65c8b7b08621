package selftest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	cases := []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/selftest/", 200, "text/html", "<title>Switchboard self-test</title>"},
		{"GET", "/selftest/selftest.js", 200, "text/javascript", "window.selftest"},
		{"GET", "/selftest/selftest.css", 200, "text/css", "body"},
		{"HEAD", "/selftest/", 200, "text/html", ""},
		{"GET", "/selftest", 307, "", ""}, // to /selftest/, so ../v1/ resolves
		{"GET", "/selftest/nope.js", 404, "", ""},
		{"POST", "/selftest/", 405, "", ""},
		{"GET", "/selftest/../v1/ice-servers", 307, "", ""}, // cleaned by the mux, never a file
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.ctype != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("body lacks %q", tc.body)
			}
			if tc.status == 200 {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
					t.Errorf("Content-Security-Policy %q does not confine scripts", csp)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Error("no X-Content-Type-Options: nosniff")
				}
			}
		})
	}
}

// TestNoInlineScript: the CSP forbids inline scripts and handlers, so the page must have none.
func TestNoInlineScript(t *testing.T) {
	html, err := files.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `\son[a-z]+\s*=`, `<style`, `style=`} {
		if m := regexp.MustCompile(re).Find(html); m != nil {
			t.Errorf("index.html has %q, which the Content-Security-Policy blocks", m)
		}
	}
	for _, ref := range regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllSubmatch(html, -1) {
		if _, err := files.ReadFile("static/" + string(ref[1])); err != nil {
			t.Errorf("index.html refers to %s, which is not embedded", ref[1])
		}
	}
}
