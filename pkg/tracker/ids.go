package tracker

import "unicode/utf8"

// ID is a 20-byte WebTorrent identifier (info_hash, peer_id). On the wire it is a JSON string of
// 20 characters U+0000–U+00FF, one per byte ("binary"/latin1), which must round-trip exactly.
type ID [20]byte

// decodeID maps a decoded JSON string (UTF-8) to an ID: exactly 20 runes, each at most U+00FF.
// The reference keeps only the low byte of larger runes, letting distinct ids collide; we refuse.
func decodeID(s []byte) (ID, bool) {
	var id ID
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if n == 20 {
				return id, false
			}
			id[n] = c
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r > 0xFF || r == utf8.RuneError && size <= 1 || n == 20 {
			return id, false
		}
		id[n] = byte(r)
		n++
		i += size
	}
	return id, n == 20
}

// appendIDJSON writes id as a quoted JSON string, bytes >= 0x80 as their U+0080–U+00FF runes in
// UTF-8 (as JSON.stringify does), control characters as \u00XX.
func appendIDJSON(dst []byte, id *ID) []byte {
	dst = append(dst, '"')
	for _, b := range id {
		switch {
		case b == '"' || b == '\\':
			dst = append(dst, '\\', b)
		case b < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
		case b < 0x80:
			dst = append(dst, b)
		default:
			dst = append(dst, 0xC0|b>>6, 0x80|b&0x3F)
		}
	}
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"
