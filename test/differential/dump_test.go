package differential

import (
	"os"
	"testing"
)

func dumpRecord(t *testing.T, s *session) {
	if os.Getenv("DUMP") == "" {
		return
	}
	for k, v := range s.record {
		for _, l := range v {
			t.Logf("%s %s <- %s", s.tr.name, k, l)
		}
	}
}
