package turnrelay

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/stun/v4"
	"github.com/prometheus/client_golang/prometheus"
)

func buildRaw(t testing.TB, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func TestErrorCodeRewrite(t *testing.T) {
	connErr := stun.NewType(stun.MethodConnect, stun.ClassErrorResponse)
	p := buildRaw(t, connErr, &stun.ErrorCodeAttribute{Code: 447})
	if got, ok := bareError(p); !ok || got != 447 {
		t.Fatalf("bareError = %d, %v", got, ok)
	}
	setErrorCode(p, 486)
	m := &stun.Message{Raw: p}
	var ec stun.ErrorCodeAttribute
	if err := m.Decode(); err != nil || ec.GetFrom(m) != nil || ec.Code != 486 {
		t.Fatalf("rewritten message: %v %v", err, ec.Code)
	}
	withReason := buildRaw(t, connErr, &stun.ErrorCodeAttribute{Code: 447, Reason: []byte("x")})
	if got, ok := bareError(withReason); ok {
		t.Fatalf("a response with reason text must be left alone, got %d", got)
	}
}

// FuzzStreamCodes: the request note and the response rewrite and signing see untrusted
// bytes; they must never panic, and the rewrite changes at most the two code bytes of a
// 28-byte error response.
func FuzzStreamCodes(f *testing.F) {
	f.Add(buildRaw(f, stun.NewType(stun.MethodConnectionBind, stun.ClassRequest), stun.NewUsername("user"),
		attr{stun.AttrConnectionID, []byte{1, 2, 3, 4}}))
	f.Add(buildRaw(f, stun.NewType(stun.MethodConnect, stun.ClassErrorResponse), &stun.ErrorCodeAttribute{Code: 447}))
	f.Add(buildRaw(f, stun.NewType(stun.MethodConnectionBind, stun.ClassSuccessResponse), attr{stun.AttrConnectionID, []byte{1, 2, 3, 4}}))
	rel := newTCPRelays(&relays{m: newMetrics(prometheus.NewRegistry())}, DefaultConfig(), nil)
	auth := fuzzAuth()
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := &frameConn{l: &tcpListener{relays: rel, auth: auth}}
		buf := bytes.Clone(raw)
		c.noteRequest(buf)
		if !bytes.Equal(buf, raw) {
			t.Fatal("noteRequest changed the request")
		}
		c.fixResponse(buf)
		for i := range buf {
			if buf[i] != raw[i] && (len(buf) != 28 || i < 26) {
				t.Fatalf("fixResponse changed byte %d", i)
			}
		}
		if signed := c.signBindSuccess(buf); signed != nil && !bytes.Equal(signed[4:20], buf[4:20]) {
			t.Fatal("signing changed the transaction")
		}
	})
}

// TestWriteStreamCodesCorpus keeps testdata/fuzz/FuzzStreamCodes in step with the seeds.
func TestWriteStreamCodesCorpus(t *testing.T) {
	if os.Getenv("WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzStreamCodes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{
		"connectionbind_request": buildRaw(t, stun.NewType(stun.MethodConnectionBind, stun.ClassRequest), stun.NewUsername("user"),
			attr{stun.AttrConnectionID, []byte{1, 2, 3, 4}}),
		"connect_447": buildRaw(t, stun.NewType(stun.MethodConnect, stun.ClassErrorResponse), &stun.ErrorCodeAttribute{Code: 447}),
		"connectionbind_success": buildRaw(t, stun.NewType(stun.MethodConnectionBind, stun.ClassSuccessResponse),
			attr{stun.AttrConnectionID, []byte{1, 2, 3, 4}}),
		"attribute_past_end": {0, 0x0b, 0, 8, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0x06, 0xff, 0xff, 'u', 0, 0, 0},
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil { //nolint:gosec // test corpus
			t.Fatal(err)
		}
	}
}
