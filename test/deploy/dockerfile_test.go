package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dockerfileUtils returns the pinned dockerfile-utils CLI (npm ci in test/deploy installs it).
func dockerfileUtils(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "test", "deploy", "node_modules", ".bin", "dockerfile-utils")
	_, err := os.Stat(bin)
	require(t, "dockerfile-utils (npm ci --ignore-scripts in test/deploy)", err == nil)
	_, err = exec.LookPath("node")
	require(t, "node", err == nil)
	return bin
}

// TestDockerfileLint: dockerfile-utils finds no problem (errors and warnings both fail), and
// it does find them in a broken file, so a pass means something.
func TestDockerfileLint(t *testing.T) {
	bin := dockerfileUtils(t)
	if out, err := run(repoRoot(t), nil, bin, "lint", "Dockerfile"); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("dockerfile-utils lint Dockerfile: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(bad, []byte("FROM\nEXPOSE notaport\nHEALTHCHECK CMD\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(repoRoot(t), nil, bin, "lint", bad); err == nil {
		t.Error("dockerfile-utils accepted a broken Dockerfile")
	}
}

// TestDockerfileShape: what the image promises: static binaries, a distroless non-root
// final stage, a HEALTHCHECK with the image's own probe and every default port exposed.
func TestDockerfileShape(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	var final []string                // instructions of the last stage
	globalArgs := map[string]string{} // ARGs before the first FROM: what FROM lines may use
	stages := 0
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if arg, ok := strings.CutPrefix(line, "ARG "); ok && stages == 0 {
			k, v, _ := strings.Cut(strings.TrimSpace(arg), "=")
			globalArgs[k] = expandArgs(v, globalArgs)
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			final = nil
			stages++
			line = expandArgs(line, globalArgs)
		}
		final = append(final, line)
	}
	for _, a := range []string{"BUILD_IMAGE", "RUNTIME_IMAGE"} {
		if img := globalArgs[a]; !regexp.MustCompile(`:[^:/]*[0-9a-z]$|@sha256:[0-9a-f]{64}$`).MatchString(img) || strings.HasSuffix(img, ":latest") {
			t.Errorf("ARG %s=%q: base images need a version tag or a digest, never latest", a, img)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "pkg/daemon.Version=", "./cmd/..."} {
		if !strings.Contains(text, want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	if len(final) == 0 || !strings.Contains(final[0], "gcr.io/distroless/static") {
		t.Fatalf("final stage must be distroless/static (no shell, no libc): %q", final)
	}
	stage := strings.Join(final, "\n")
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(stage)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("final stage must set a non-root USER, got %v", user)
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/usr/local/bin/healthcheck"`).MatchString(stage) {
		t.Error(`HEALTHCHECK must run the image's own probe (CMD ["/usr/local/bin/healthcheck" ...])`)
	}
	if _, err := os.Stat(filepath.Join(repoRoot(t), "cmd", "healthcheck")); err != nil {
		t.Error("cmd/healthcheck (the HEALTHCHECK probe) is missing")
	}
	exposed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^EXPOSE (.*)$`).FindAllStringSubmatch(stage, -1) {
		for _, p := range strings.Fields(m[1]) {
			exposed[p] = true
		}
	}
	for _, d := range []string{"tracker", "turnd", "credapi"} {
		cfg, ok := shippedConfig(t, d)
		if !ok {
			continue
		}
		keys := map[string][]string{"listen": {"tcp"}, "ops.listen": {"tcp"}}
		if d == "turnd" {
			keys = map[string][]string{"listen": {"udp", "tcp"}, "ops.listen": {"tcp"}, "tls.listen": {"tcp"}}
		}
		for key, protos := range keys {
			v, _ := lookup(cfg, key)
			port, err := portOf(v)
			if err != nil {
				t.Errorf("configs/%s.yaml %s: %v", d, key, err)
				continue
			}
			for _, proto := range protos {
				if p := strconv.Itoa(int(port)) + "/" + proto; !exposed[p] {
					t.Errorf("Dockerfile does not EXPOSE %s (%s %s)", p, d, key)
				}
			}
		}
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range []string{"!go.mod", "!go.sum", "!cmd/", "!pkg/", "!configs/"} {
		if !strings.Contains(string(ignore), need) {
			t.Errorf(".dockerignore must let %s into the build context", strings.TrimPrefix(need, "!"))
		}
	}
}

// expandArgs substitutes ${NAME} and $NAME with earlier ARG values, as BuildKit does in FROM.
func expandArgs(s string, args map[string]string) string {
	return regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`).ReplaceAllStringFunc(s, func(ref string) string {
		name := strings.Trim(ref, "${}")
		if v, ok := args[name]; ok {
			return v
		}
		return ref
	})
}
