package turnrelay

import (
	"bytes"
	"testing"
)

func TestForbidChannelBind(t *testing.T) {
	hdr := []byte{0x01, 0x19, 0, 8, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	tests := []struct {
		name string
		in   []byte
		want byte // last byte after the call
	}{
		{"policy refusal 401 becomes 403", append(append([]byte{}, hdr...), 0, 9, 0, 4, 0, 0, 4, 1), 3},
		{"other code untouched", append(append([]byte{}, hdr...), 0, 9, 0, 4, 0, 0, 4, 0), 0},
		{"challenge with more attributes untouched", append(append([]byte{}, hdr[:3]...), append([]byte{16}, append(hdr[4:], 0, 9, 0, 4, 0, 0, 4, 1, 0, 0x15, 0, 4, 'n', 'o', 'n', 'c')...)...), 'c'},
	}
	for _, tt := range tests {
		b := append([]byte{}, tt.in...)
		forbidChannelBind(b)
		if b[len(b)-1] != tt.want {
			t.Errorf("%s: last byte %d, want %d", tt.name, b[len(b)-1], tt.want)
		}
		if !bytes.Equal(b[:len(b)-1], tt.in[:len(tt.in)-1]) {
			t.Errorf("%s: changed more than the code", tt.name)
		}
	}
}

func TestWellFramed(t *testing.T) {
	stun := []byte{0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0}
	tests := []struct {
		name string
		p    []byte
		want bool
	}{
		{"stun", stun, true},
		{"stun with trailing bytes", append(append([]byte{}, stun...), 0), false},
		{"stun without cookie", append([]byte{0, 1, 0, 4, 1, 1, 1, 1}, stun[8:]...), false},
		{"short", stun[:10], false},
		{"channeldata", []byte{0x40, 0, 0, 2, 'h', 'i'}, true},
		{"channeldata padded", []byte{0x40, 0, 0, 2, 'h', 'i', 0, 0}, true},
		{"channeldata too long", []byte{0x40, 0, 0, 9, 'h', 'i'}, false},
		{"other first byte", []byte{0x80, 0, 0, 0}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := wellFramed(tt.p); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
