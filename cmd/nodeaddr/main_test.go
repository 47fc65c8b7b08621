package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testtool.SelfSignedCert(t, dir, "apiserver")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/v1/nodes/public":
			_, _ = w.Write([]byte(`{"kind":"Node","status":{"addresses":[{"type":"InternalIP","address":"10.0.0.5"},{"type":"ExternalIP","address":"34.120.1.10"},{"type":"ExternalIP","address":"2600:1900:4000::10"}]}}`))
		case "/api/v1/nodes/private":
			_, _ = w.Write([]byte(`{"kind":"Node","status":{"addresses":[{"type":"InternalIP","address":"10.0.0.5"}]}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "public_ip")
	common := []string{"--api-server=" + srv.URL, "--token-file=" + token, "--ca-file=" + certFile, "--out=" + out, "--timeout=5s"}

	tests := []struct {
		name     string
		args     []string
		code     int
		file     string // expected content of --out (code 0)
		stderrIn string
	}{
		{"external ipv4", append([]string{"--node=public"}, common...), 0, "34.120.1.10\n", ""},
		{"external ipv6", append([]string{"--node=public", "--family=ipv6"}, common...), 0, "2600:1900:4000::10\n", ""},
		{"same family as ipv6", append([]string{"--node=public", "--same-family-as=fd00::1"}, common...), 0, "2600:1900:4000::10\n", ""},
		{"same family as ipv4 wins over --family", append([]string{"--node=public", "--family=ipv6", "--same-family-as=10.0.0.5"}, common...), 0, "34.120.1.10\n", ""},
		{"bad same family", append([]string{"--node=public", "--same-family-as=$(HOST_IP)"}, common...), 2, "", "not an IP address"},
		{"private internal only", append([]string{"--node=private", "--internal-fallback"}, common...), 1, "", "turnd.relay.publicIP"},
		{"private allowed", append([]string{"--node=private", "--internal-fallback", "--allow-private"}, common...), 0, "10.0.0.5\n", ""},
		{"unknown node", append([]string{"--node=nope"}, common...), 1, "", "spec.nodeName"},
		{"no --out", []string{"--node=public"}, 2, "", "--out is required"},
		{"bad family", append([]string{"--node=public", "--family=ipx"}, common...), 2, "", "--family"},
		{"stray argument", append([]string{"--node=public", "extra"}, common...), 2, "", "unexpected argument"},
		{"bad flag", []string{"--nope"}, 2, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove(out)
			var stderr strings.Builder
			if got := run(tt.args, io.Discard, &stderr); got != tt.code {
				t.Fatalf("run(%q) = %d, want %d; stderr:\n%s", tt.args, got, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderrIn) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderrIn, stderr.String())
			}
			data, err := os.ReadFile(out)
			if tt.code == 0 && (err != nil || string(data) != tt.file) {
				t.Errorf("%s holds %q (%v), want %q", out, data, err, tt.file)
			}
			if tt.code != 0 && err == nil {
				t.Errorf("%s was written although nodeaddr failed", out)
			}
		})
	}
}
