package credapi

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLogsCarryNoSecrets runs the daemon at debug level in both log formats, drives every
// endpoint and refusal plus secret reloads (good and bad), and scans every log line for the
// secrets, the issued usernames and passwords, the API keys, the client's address and its
// username parameter.
func TestLogsCarryNoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "secrets")
			fileSecret := "file-secret-" + strings.Repeat("f", 40)
			newSecret := "new-secret-" + strings.Repeat("n", 40)
			shortSecret := "leaky-short"
			if err := os.WriteFile(file, []byte(fileSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			apiKey := "api-key-never-logged-0123"
			wrongKey := "wrong-key-never-logged-456"
			clientIP := "203.0.113.77"
			userParam := "alice-private-id"

			cfg := testConfig()
			cfg.Auth.SecretsFile = file
			cfg.APIKeys = []string{apiKey}
			cfg.TrustedProxies = []string{"127.0.0.0/8"}
			cfg.RateLimit.PerMinute = 60
			cfg.RateLimit.Burst = 12
			d := startDaemon(t, cfg, format)

			secret := []string{testSecret, fileSecret, newSecret, shortSecret, apiKey, wrongKey, clientIP, userParam}
			var issued []string
			fetch := func(path string, headers ...string) int {
				code, m := d.get(t, path, append(headers, "X-Forwarded-For: "+clientIP)...)
				for _, f := range []string{"username", "password", "credential"} {
					if v, ok := m[f].(string); ok {
						issued = append(issued, v)
					}
				}
				if servers, ok := m["iceServers"].([]any); ok {
					for _, s := range servers {
						for _, f := range []string{"username", "credential"} {
							if v, ok := s.(map[string]any)[f].(string); ok {
								issued = append(issued, v)
							}
						}
					}
				}
				return code
			}
			bearer := "Authorization: Bearer " + apiKey
			for _, p := range []string{"/api/get-config", "/v1/ice-servers", "/v1/client-config", "/v1/turn?username=" + userParam, "/?service=turn&username=" + userParam} {
				if code := fetch(p, bearer, "Origin: "+testOrigin); code != 200 {
					t.Fatalf("%s: status %d", p, code)
				}
			}
			fetch("/v1/turn?key=" + wrongKey)
			fetch("/v1/turn", "Authorization: Bearer "+wrongKey)
			fetch("/v1/turn?key="+apiKey, "Origin: https://evil.example")
			fetch("/v1/turn?key=" + apiKey + "&username=bad:name")
			fetch("/nope?key=" + apiKey)

			if err := os.WriteFile(file, []byte(shortSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			d.hup <- syscall.SIGHUP
			waitFor(t, "the failed reload", 5e9, func() bool { return strings.Contains(d.logs.String(), "keeping the previous ones") })
			if err := os.WriteFile(file, []byte(newSecret+"\n"+fileSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			d.hup <- syscall.SIGHUP
			waitFor(t, "the good reload", 5e9, func() bool { return strings.Contains(d.logs.String(), "secrets reloaded") })
			fetch("/v1/turn", bearer)
			rateLimited := false
			for range 20 {
				if fetch("/v1/turn", bearer) == 429 {
					rateLimited = true
					break
				}
			}
			if !rateLimited {
				t.Fatal("expected to reach the rate limit")
			}
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			if len(issued) < 10 {
				t.Fatalf("only %d credential fields collected", len(issued))
			}
			logs := d.logs.String()
			lines := strings.Split(strings.TrimSpace(logs), "\n")
			if len(lines) < 15 {
				t.Fatalf("only %d log lines; the debug access log should be running:\n%s", len(lines), logs)
			}
			for i, line := range lines {
				for _, s := range append(secret, issued...) {
					if strings.Contains(line, s) {
						t.Errorf("log line %d contains a secret, credential, key, address or username (%s...):\n%s", i+1, s[:min(4, len(s))], line)
					}
				}
			}
			t.Logf("scanned %d log lines for %d sensitive values", len(lines), len(secret)+len(issued))
		})
	}
}
