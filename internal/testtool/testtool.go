// Package testtool lets tests depend on outside tools (coturn, node, chromium) honestly:
// where a tool is missing a test skips on a developer's machine, but fails under CI=true,
// where .ci/run was meant to install it.
package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where nothing may be skipped for a missing tool.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of the named executable, or fails (CI) / skips (elsewhere).
func Require(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not on PATH (.ci/run installs it)")
	}
	return p
}

// RequireFile returns path if it exists, or fails (CI) / skips (elsewhere) with hint.
func RequireFile(t testing.TB, path, hint string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, path+" is missing: "+hint)
	}
	return path
}

// Missing reports a missing prerequisite.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a test prerequisite is missing: %s", why)
	}
	t.Skipf("skipping: %s (under CI=true this fails)", why)
}

// RepoRoot is the repository's top directory, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
