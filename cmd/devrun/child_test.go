package main

import (
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

type lockedBuilder = testtool.SyncBuffer

// TestPrefixer: every line of every daemon comes out whole, with its daemon's prefix, even
// when writes split lines and daemons write at once.
func TestPrefixer(t *testing.T) {
	var out lockedBuilder
	p := newPrefixer(&out)
	var wg sync.WaitGroup
	for _, name := range []string{"tracker", "turnd", "credapi"} {
		w := p.writer(name)
		wg.Go(func() {
			for range 100 {
				_, _ = w.Write([]byte("level=INFO msg=\"half a "))
				_, _ = w.Write([]byte("line\" from=" + name + "\n"))
			}
			_ = w.Close()
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 300 {
		t.Fatalf("%d lines, want 300", len(lines))
	}
	for _, l := range lines {
		name := l[strings.LastIndex(l, "from=")+len("from="):]
		if want := "[" + name; !strings.HasPrefix(l, want) || !strings.Contains(l, `msg="half a line"`) {
			t.Fatalf("line %q is not whole or not prefixed with %s]", l, want)
		}
	}
}

func TestNewSecret(t *testing.T) {
	a, err := newSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newSecret()
	if len(a) < 32 || a == b {
		t.Fatalf("secrets %q and %q: want two different ones of at least 32 bytes", a, b)
	}
}
