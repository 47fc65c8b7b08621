package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// buildkitCheck parses a Dockerfile with BuildKit's own parser and instruction decoder (what
// docker build runs first) and its build checks, returning every error and warning. It
// covers what dockerfile-utils does not read, such as RUN --mount flags.
func buildkitCheck(src []byte) []string {
	var problems []string
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	for _, w := range res.Warnings {
		problems = append(problems, fmt.Sprintf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if err == nil && len(stages) == 0 {
		problems = append(problems, "no build stage")
	}
	// RUN --mount values are validated when the build expands them; expand as-is here.
	for _, st := range stages {
		for _, cmd := range st.Commands {
			if run, ok := cmd.(*instructions.RunCommand); ok {
				if err := run.Expand(func(word string) (string, error) { return word, nil }); err != nil {
					problems = append(problems, fmt.Sprintf("line %d: %v", run.Location()[0].Start.Line, err))
				}
			}
		}
	}
	return problems
}

// TestDockerfileBuildkit: the Dockerfile passes BuildKit's parser and checks with nothing to
// report, and broken ones do not (so the pass means something).
func TestDockerfileBuildkit(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if p := buildkitCheck(src); len(p) > 0 {
		t.Errorf("Dockerfile:\n%s", strings.Join(p, "\n"))
	}
	bad := []struct{ name, src string }{
		{"unknown RUN flag", "FROM scratch AS base\nRUN --mont=type=cache,target=/x true\n"},
		{"bad mount type", "FROM scratch AS base\nRUN --mount=type=cachez,target=/x true\n"},
		{"stage name casing", "FROM scratch AS Final\n"},
		{"no FROM", "RUN true\n"},
		{"maintainer", "FROM scratch AS base\nMAINTAINER someone\n"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if p := buildkitCheck([]byte(tt.src)); len(p) == 0 {
				t.Errorf("no problem reported for:\n%s", tt.src)
			}
		})
	}
}
