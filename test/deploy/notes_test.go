package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// renderNotes renders templates/NOTES.txt, which helm template skips: a copy of the chart gets
// one more template that runs NOTES.txt through tpl (with every helper defined) into a
// ConfigMap, and only that is shown.
func renderNotes(t *testing.T, vs valueSet) string {
	t.Helper()
	src := chartDir(t)
	dst := filepath.Join(t.TempDir(), "switchboard")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(src, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "files", "notes-under-test.txt"), notes, 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ tpl (.Files.Get \"files/notes-under-test.txt\") . | quote }}\n"
	if err := os.WriteFile(filepath.Join(dst, "templates", "zz-notes-under-test.yaml"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(repoRoot(t), nil, helmBin(t), helmArgs(vs, "template", release, dst, "--namespace", namespace,
		"--kube-version", kubeVersion, "--show-only", "templates/zz-notes-under-test.yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeAll(out)
	if err != nil || len(objs) != 1 {
		t.Fatalf("notes: %v (%d objects)", err, len(objs))
	}
	return objs[0].(*corev1.ConfigMap).Data["notes"]
}

// TestNotes: the install notes tell the operator what to hand clients, for every value set.
func TestNotes(t *testing.T) {
	for _, vs := range valueSets(t) {
		t.Run(vs.name, func(t *testing.T) {
			notes := renderNotes(t, vs)
			if strings.Contains(notes, "<no value>") || strings.Contains(notes, "%!") {
				t.Errorf("notes contain a template slip:\n%s", notes)
			}
			r := render(t, vs)
			components := map[string]bool{}
			for _, w := range workloads(r.objects) {
				components[w.component()] = true
			}
			want := map[string][]string{
				"tracker": {"ws"},
				"credapi": {"/api/get-config", "/v1/ice-servers", "/v1/client-config", "ICE URLs handed out"},
				"turnd":   {"TURN relay", "3478"},
			}
			for c, needles := range want {
				for _, n := range needles {
					if components[c] && !strings.Contains(notes, n) {
						t.Errorf("%s is installed but the notes lack %q:\n%s", c, n, notes)
					}
				}
			}
			if vs.name == "default" && !strings.Contains(notes, "WARNING") {
				t.Errorf("default values use example hosts; the notes must warn:\n%s", notes)
			}
		})
	}
}
