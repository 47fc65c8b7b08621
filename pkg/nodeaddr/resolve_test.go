package nodeaddr

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "public_ip")
	for _, a := range []string{"34.120.1.10", "2600:1900:4000::10"} {
		if err := WriteFile(path, netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != a+"\n" {
			t.Fatalf("file holds %q (%v), want %q", got, err, a+"\n")
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	err := WriteFile(filepath.Join(dir, "missing", "public_ip"), netip.MustParseAddr("34.120.1.10"))
	if err == nil || !strings.Contains(err.Error(), "emptyDir") {
		t.Errorf("want an error saying the directory must exist, got %v", err)
	}
}
