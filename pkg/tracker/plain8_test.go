package tracker

import (
	"encoding/binary"
	"testing"
)

// plain8 must agree with the byte-by-byte rule for every byte value in every position.
func TestPlain8(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := true
			for _, x := range b {
				if x < 0x20 || x == '"' || x == '\\' || x >= 0x80 {
					want = false
				}
			}
			if got := plain8(binary.LittleEndian.Uint64(b)); got != want {
				t.Fatalf("plain8(%q) = %v, want %v", b, got, want)
			}
		}
	}
}
