package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// repoRoot is two levels up from test/deploy.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// require skips on a developer machine without the tool, and fails under CI=true, where
// .ci/run installs everything (the same rule as internal/testtool, which another module
// cannot import).
func require(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; CI must install it (see .ci/run and the Makefile's deploy-tools)", what)
	}
	t.Skipf("%s is missing (run make deploy-test to install it)", what)
}

// helmBin finds helm: $HELM (set by make deploy-test), then PATH, then $(go env GOPATH)/bin.
func helmBin(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		h := filepath.Join(string(bytes.TrimSpace(out)), "bin", "helm")
		if _, err := os.Stat(h); err == nil {
			return h
		}
	}
	require(t, "helm", false)
	return ""
}

// run executes a command and returns stdout; stderr is part of the error.
func run(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %q: %w\nstdout: %s\nstderr: %s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// daemonBin builds every ./cmd/... binary of the main module once and returns the path of
// one; it skips while cmd/<name> does not exist yet (the daemons are written in parallel).
func daemonBin(t *testing.T, name string) string {
	t.Helper()
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", name)); err != nil {
		t.Skipf("cmd/%s does not exist yet", name)
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "switchboard-deploy-bin-")
		if buildErr != nil {
			return
		}
		_, buildErr = run(root, append(os.Environ(), "CGO_ENABLED=0"), "go", "build", "-o", binDir+string(filepath.Separator), "./cmd/...")
	})
	if buildErr != nil {
		t.Fatalf("building ./cmd/...: %v", buildErr)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}
