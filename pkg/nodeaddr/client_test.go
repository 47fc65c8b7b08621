package nodeaddr

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

const testToken = "test-token-abc"

// apiServer poses as the Kubernetes API server over TLS: it checks the bearer token and the
// path, then answers with handler's status and body.
type apiServer struct {
	*httptest.Server
	tokenFile, caFile string
	requests          atomic.Int32
}

func newAPIServer(t *testing.T, handler func(n int32, w http.ResponseWriter)) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"kind":"Status","message":"Unauthorized","reason":"Unauthorized"}`))
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/nodes/n1" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","message":"nodes \"` + strings.TrimPrefix(r.URL.Path, "/api/v1/nodes/") + `\" not found"}`))
			return
		}
		handler(n, w)
	}))
	// A fresh self-signed CA per server (httptest's built-in one is shared by all servers,
	// which would make the pinning test vacuous).
	dir := t.TempDir()
	certFile, keyFile, _ := testtool.SelfSignedCert(t, dir, "apiserver")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	s.StartTLS()
	t.Cleanup(s.Close)
	s.tokenFile, s.caFile = filepath.Join(dir, "token"), certFile
	writeFile(t, s.tokenFile, testToken+"\n")
	return s
}

func (s *apiServer) config() Config {
	return Config{Server: s.URL, TokenFile: s.tokenFile, CAFile: s.caFile, RequestTimeout: 5 * time.Second}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func nodeJSON(addrs string) string {
	return `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1"},"status":{"addresses":[` + addrs + `]}}`
}

func answer(status int, body string) func(int32, http.ResponseWriter) {
	return func(_ int32, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestResolve(t *testing.T) {
	big := nodeJSON(`{"type":"ExternalIP","address":"34.120.1.10"}`)
	big = big[:len(big)-1] + `,"pad":"` + strings.Repeat("x", maxResponseBytes) + `"}`
	tests := []struct {
		name     string
		node     string
		handler  func(int32, http.ResponseWriter)
		pref     Preference
		want     string
		errHave  []string
		requests int32 // how many requests the server must have seen (0: don't care)
	}{
		{"external", "n1", answer(200, nodeJSON(`{"type":"InternalIP","address":"10.0.0.5"},{"type":"ExternalIP","address":"34.120.1.10"}`)),
			Preference{}, "34.120.1.10", nil, 1},
		{"ipv6", "n1", answer(200, nodeJSON(`{"type":"ExternalIP","address":"34.120.1.10"},{"type":"ExternalIP","address":"2600:1900:4000::10"}`)),
			Preference{Family: IPv6}, "2600:1900:4000::10", nil, 1},
		{"fallback", "n1", answer(200, nodeJSON(`{"type":"InternalIP","address":"34.120.1.10"},{"type":"Hostname","address":"n1"}`)),
			Preference{InternalFallback: true}, "34.120.1.10", nil, 1},
		{"no external ip", "n1", answer(200, nodeJSON(`{"type":"InternalIP","address":"10.0.0.5"}`)),
			Preference{}, "", []string{"no IPv4 ExternalIP", "turnd.relay.publicIP"}, 1},
		{"forbidden", "n1", answer(403, `{"kind":"Status","message":"nodes \"n1\" is forbidden: User \"system:serviceaccount:x:y\" cannot get resource \"nodes\""}`),
			Preference{}, "", []string{"403 Forbidden", "cannot get resource", "needs get on nodes"}, 1},
		{"wrong node", "n2", answer(200, nodeJSON("")), Preference{}, "", []string{"404", "spec.nodeName"}, 1},
		{"empty node name", "", answer(200, nodeJSON("")), Preference{}, "", []string{"NODE_NAME"}, 0},
		{"retries 503 then succeeds", "n1", func(n int32, w http.ResponseWriter) {
			if n < 3 {
				answer(503, `{"kind":"Status","message":"etcd leader changed"}`)(n, w)
				return
			}
			answer(200, nodeJSON(`{"type":"ExternalIP","address":"34.120.1.10"}`))(n, w)
		}, Preference{}, "34.120.1.10", nil, 3},
		{"too large", "n1", answer(200, big), Preference{}, "", []string{"larger than"}, 1},
		{"not a node", "n1", answer(200, `{"kind":"Status","message":"x"}`), Preference{}, "", []string{"not a Node"}, 1},
		{"bad json", "n1", answer(200, `{"kind":"Node","status":{"addresses":"x"}}`), Preference{}, "", []string{"decoding the Node"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, tt.handler)
			c, err := NewClient(s.config())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := Resolve(ctx, c, tt.node, tt.pref, time.Millisecond)
			if tt.want != "" {
				if err != nil || got.String() != tt.want {
					t.Fatalf("Resolve = %v, %v; want %s", got, err, tt.want)
				}
			} else {
				if err == nil {
					t.Fatalf("Resolve = %v, want an error", got)
				}
				for _, s := range tt.errHave {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error lacks %q:\n%v", s, err)
					}
				}
			}
			if tt.requests > 0 && s.requests.Load() != tt.requests {
				t.Errorf("server saw %d requests, want %d", s.requests.Load(), tt.requests)
			}
		})
	}
}

// TestClientTrust: the token goes only to a server the cluster CA vouches for, never over
// plain HTTP, and a wrong token is reported as such.
func TestClientTrust(t *testing.T) {
	ok := answer(200, nodeJSON(`{"type":"ExternalIP","address":"34.120.1.10"}`))
	s := newAPIServer(t, ok)
	other := newAPIServer(t, ok) // a different self-signed CA

	t.Run("other CA refused, not retried", func(t *testing.T) {
		cfg := s.config()
		cfg.CAFile = other.caFile
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = Resolve(ctx, c, "n1", Preference{}, time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("want a certificate error, got %v", err)
		}
		if s.requests.Load() != 0 {
			t.Errorf("the server got %d requests (with the token) despite the wrong CA", s.requests.Load())
		}
		if ctx.Err() != nil {
			t.Error("a certificate error was retried until the deadline")
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		cfg := s.config()
		cfg.TokenFile = filepath.Join(t.TempDir(), "token")
		writeFile(t, cfg.TokenFile, "stale")
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.NodeAddresses(context.Background(), "n1")
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 401 || !strings.Contains(err.Error(), "token was refused") {
			t.Fatalf("want a 401 APIError naming the token, got %v", err)
		}
	})
	tests := []struct {
		name    string
		mutate  func(*Config)
		env     map[string]string
		errHave string
	}{
		{"plain http", func(c *Config) { c.Server = strings.Replace(c.Server, "https", "http", 1) }, nil, "https://"},
		{"no token file", func(c *Config) { c.TokenFile = "/nonexistent/token" }, nil, "service-account token"},
		{"empty token", func(c *Config) { c.TokenFile = filepath.Join(t.TempDir(), "empty"); writeFile(t, c.TokenFile, "\n") }, nil, "empty"},
		{"no CA", func(c *Config) { c.CAFile = "/nonexistent/ca.crt" }, nil, "cluster CA"},
		{"CA not PEM", func(c *Config) { c.CAFile = s.tokenFile }, nil, "no PEM certificate"},
		{"not in a pod", func(c *Config) { c.Server = "" }, map[string]string{"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""}, "--api-server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg := s.config()
			tt.mutate(&cfg)
			if _, err := NewClient(cfg); err == nil || !strings.Contains(err.Error(), tt.errHave) {
				t.Errorf("NewClient: want an error naming %q, got %v", tt.errHave, err)
			}
		})
	}
	t.Run("in-cluster environment", func(t *testing.T) {
		host, port, _ := strings.Cut(strings.TrimPrefix(s.URL, "https://"), ":")
		t.Setenv("KUBERNETES_SERVICE_HOST", host)
		t.Setenv("KUBERNETES_SERVICE_PORT", port)
		cfg := s.config()
		cfg.Server = ""
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.NodeAddresses(context.Background(), "n1"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestResolveGivesUp(t *testing.T) {
	s := newAPIServer(t, answer(503, `{"kind":"Status","message":"unavailable"}`))
	c, err := NewClient(s.config())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Resolve(ctx, c, "n1", Preference{}, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("want the last 503 and a give-up note, got %v", err)
	}
	if s.requests.Load() < 2 {
		t.Errorf("a 503 was not retried (%d requests)", s.requests.Load())
	}
}
