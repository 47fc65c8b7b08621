package tracker

import (
	"encoding/json"
	"strings"
	"testing"
)

// latin1 maps bytes to the JS "binary" string clients send: one rune per byte.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// TestIDEveryByteRoundTrips puts every byte value 0x00-0xFF at every position class through
// appendIDJSON → encoding/json → decodeID, and through our scanner's unquote.
func TestIDEveryByteRoundTrips(t *testing.T) {
	for v := 0; v < 256; v++ {
		var id ID
		for i := range id {
			id[i] = byte(v + i*13) // v in slot 0, a spread of others elsewhere
		}
		id[19] = byte(v)
		enc := appendIDJSON(nil, &id)
		if !json.Valid(enc) {
			t.Fatalf("byte %#02x: appendIDJSON produced invalid JSON %q", v, enc)
		}
		var s string
		if err := json.Unmarshal(enc, &s); err != nil {
			t.Fatalf("byte %#02x: %v", v, err)
		}
		if s != latin1(id[:]) {
			t.Fatalf("byte %#02x: JSON decodes to %q, want %q", v, s, latin1(id[:]))
		}
		// What encoding/json (and so JSON.stringify-like clients) produce must decode back.
		std, _ := json.Marshal(latin1(id[:]))
		for _, in := range [][]byte{enc, std} {
			var d decoder
			d.s = scanner{b: in}
			raw, esc, err := d.s.str()
			if err != nil {
				t.Fatalf("byte %#02x: scanner refused %q: %v", v, in, err)
			}
			got, ok := decodeID(unquote(nil, raw, esc))
			if !ok || got != id {
				t.Fatalf("byte %#02x: decodeID(%q) = %x, %v; want %x", v, in, got, ok, id)
			}
		}
	}
}

func TestDecodeID(t *testing.T) {
	twenty := strings.Repeat("a", 20)
	tests := []struct {
		name string
		in   string // already-unescaped UTF-8
		ok   bool
	}{
		{"ascii", twenty, true},
		{"all latin1 high", strings.Repeat("\u00ff", 20), true},
		{"mixed", "\x00\x7f\u0080\u00e9" + strings.Repeat("z", 16), true},
		{"empty", "", false},
		{"19", twenty[:19], false},
		{"21", twenty + "a", false},
		{"21 high", strings.Repeat("\u00ff", 21), false},
		{"rune over U+00FF", "\u0100" + twenty[:19], false},
		{"emoji", "😀" + twenty[:19], false},
		{"replacement char", "\ufffd" + twenty[:19], false},
		{"invalid UTF-8", "\xff" + twenty[:19], false},
		{"truncated UTF-8", twenty[:19] + "\xc3", false},
		{"40 bytes of 20 runes is fine", strings.Repeat("é", 20), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := decodeID([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("decodeID(%q) ok=%v, want %v", tt.in, ok, tt.ok)
			}
			if ok {
				if got := latin1(id[:]); got != tt.in {
					t.Fatalf("decodeID(%q) = %q", tt.in, got)
				}
			}
		})
	}
}

func TestAppendIDJSONEscapes(t *testing.T) {
	var id ID
	copy(id[:], "\"\\\x00\x1f\x7f/<>&")
	for i := 9; i < 20; i++ {
		id[i] = 0xff
	}
	got := string(appendIDJSON(nil, &id))
	want := `"\"\\\u0000\u001f` + "\x7f/<>&" + strings.Repeat("ÿ", 11) + `"`
	if got != want {
		t.Fatalf("appendIDJSON = %q, want %q", got, want)
	}
}
