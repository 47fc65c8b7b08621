package e2e

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProbe runs the built probe command against fresh daemons, as an operator would: every
// check passes on a healthy suite, and the relay check fails (exit 1, naming the policy)
// when turnd keeps its production peer policy and the echo peer is on loopback.
func TestProbe(t *testing.T) {
	cases := []struct {
		name          string
		allowLoopback bool
		wantCode      int
		wantLines     []string
	}{
		{"healthy suite", true, 0, []string{"ok    credapi", "ok    turn/udp", "ok    turn/tcp", "ok    tracker", "ok    signal", "all checks passed"}},
		{"loopback peer refused", false, 1, []string{"ok    credapi", "FAIL  turn/udp", "peers.allow", "ok    signal", "check(s) failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSuite(t, suiteOpts{allowLoopback: tc.allowLoopback})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "probe"), "--credapi="+s.credURL,
				"--tracker="+s.trackerURL(), "--origin="+s.pages.URL, "--timeout=5s")
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			t.Logf("probe output:\n%s", out)
			if code != tc.wantCode {
				t.Errorf("probe exited %d, want %d", code, tc.wantCode)
			}
			for _, w := range tc.wantLines {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if strings.Contains(string(out), s.secret) {
				t.Error("the probe printed the shared secret")
			}
		})
	}
}
