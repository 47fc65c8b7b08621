package main

import (
	"strings"
	"testing"
)

// TestUsage: bad invocations exit 2 with a message; checks that cannot pass exit 1.
func TestUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"nothing to check", []string{"--credapi=", "--tracker="}, 2, "nothing to check"},
		{"unreachable tracker", []string{"--credapi=", "--tracker=ws://127.0.0.1:1", "--timeout=2s"}, 1, "FAIL  tracker"},
		{"unreachable credapi", []string{"--credapi=http://127.0.0.1:1", "--tracker=", "--timeout=2s"}, 1, "not checked: no credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(tc.args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tc.code, tc.out)
			}
		})
	}
}
