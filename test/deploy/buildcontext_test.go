package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerBuildContext builds the image's binaries from exactly the files .dockerignore
// lets into the build context (matched with moby/patternmatcher, the matcher docker build
// uses), running the Dockerfile's build command. No engine is needed to learn that the
// context lacks a file, or that ./cmd/... does not build without tests and testdata.
func TestDockerBuildContext(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	var copied int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil || excluded {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(ctxDir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		copied++
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, leaked := range []string{".env", "deploy/secrets/turn_secret", "bin", ".git"} {
		if _, err := os.Stat(filepath.Join(ctxDir, leaked)); err == nil {
			t.Errorf("%s reaches the build context", leaked)
		}
	}
	out := filepath.Join(t.TempDir(), "out") + string(filepath.Separator)
	env := append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if _, err := run(ctxDir, env, "go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/switchboard-p2p/switchboard/pkg/daemon.Version=test", "-o", out, "./cmd/..."); err != nil {
		t.Fatalf("building ./cmd/... from the %d files of the build context: %v", copied, err)
	}
	for _, bin := range []string{"healthcheck", "nodeaddr", "tracker", "turnd", "credapi"} {
		if _, err := os.Stat(filepath.Join(root, "cmd", bin)); err != nil {
			continue // not written yet
		}
		if _, err := os.Stat(filepath.Join(out, bin)); err != nil {
			t.Errorf("the image would lack /usr/local/bin/%s", bin)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(ctxDir, "configs")); len(entries) == 0 {
		t.Error("configs/ does not reach the image (COPY configs/)")
	}
	if _, err := os.Stat(filepath.Join(ctxDir, "go.sum")); err != nil {
		t.Error("go.sum does not reach the build context")
	}
}
