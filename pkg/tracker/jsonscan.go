package tracker

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// A small JSON scanner for the one shape the tracker reads: a top-level object whose offer and
// answer values are kept as raw, validated bytes and forwarded untouched. encoding/json would
// decode and re-encode every SDP; the hot path only needs to find value boundaries.

var (
	errSyntax   = errors.New("invalid JSON")
	errTooDeep  = errors.New("JSON nested too deeply")
	errNotObj   = errors.New("message must be a JSON object")
	errTrailing = errors.New("invalid JSON: data after the object")
)

// maxDepth bounds recursion so a hostile "[[[[..." cannot exhaust the stack.
const maxDepth = 64

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errSyntax
	}
	s.i++
	return nil
}

// str scans a string token and returns it with its quotes, plus whether it holds escapes.
// Control characters and invalid UTF-8 are refused, as JSON and WebSocket text frames require.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	if s.peek() != '"' {
		return nil, false, errSyntax
	}
	start := s.i
	s.i++
	for s.i < len(s.b) {
		// Skip 8 plain bytes at a time: SDP strings are long runs with nothing to check.
		for s.i+8 <= len(s.b) && plain8(binary.LittleEndian.Uint64(s.b[s.i:])) {
			s.i += 8
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, errSyntax
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, errSyntax
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if unhex(h) < 0 {
						return nil, false, errSyntax
					}
				}
				s.i += 6
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false, errSyntax
			}
			s.i += size
		}
	}
	return nil, false, errSyntax
}

// number scans a JSON number and reports whether it is exactly zero and its integer value
// (saturated) when it is a plain integer.
func (s *scanner) number() (isZero bool, intVal int64, isInt bool, err error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return false, 0, false, errSyntax
	}
	nonZeroDigit := false
	isInt = true
	if s.b[s.i] == '0' {
		s.i++
	} else if s.b[s.i] >= '1' && s.b[s.i] <= '9' {
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			if intVal < 1<<40 {
				intVal = intVal*10 + int64(s.b[s.i]-'0')
			}
			nonZeroDigit = true
			s.i++
		}
	} else {
		return false, 0, false, errSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		isInt = false
		s.i++
		digits := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			if s.b[s.i] != '0' {
				nonZeroDigit = true
			}
			digits++
			s.i++
		}
		if digits == 0 {
			return false, 0, false, errSyntax
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		isInt = false
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		digits := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			digits++
			s.i++
		}
		if digits == 0 {
			return false, 0, false, errSyntax
		}
	}
	if s.b[start] == '-' {
		intVal = -intVal
	}
	return !nonZeroDigit, intVal, isInt, nil
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return errSyntax
	}
	s.i += len(word)
	return nil
}

// value skips any JSON value and returns its raw bytes.
func (s *scanner) value(depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	c := s.peek()
	start := s.i
	var err error
	switch {
	case c == '{':
		s.i++
		if s.peek() == '}' {
			s.i++
			break
		}
		for {
			if _, _, err = s.str(); err != nil {
				return nil, err
			}
			if err = s.expect(':'); err != nil {
				return nil, err
			}
			if _, err = s.value(depth + 1); err != nil {
				return nil, err
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if err = s.expect('}'); err != nil {
				return nil, err
			}
			break
		}
	case c == '[':
		err = s.elements(func() error {
			_, err := s.value(depth + 1)
			return err
		})
	case c == '"':
		_, _, err = s.str()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		_, _, _, err = s.number()
	default:
		err = errSyntax
	}
	if err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// elements scans an array (the scanner is at '[') and calls each once per element, with the
// scanner at the element's start.
func (s *scanner) elements(each func() error) error {
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := each(); err != nil {
			return err
		}
		if s.peek() != ',' {
			return s.expect(']')
		}
		s.i++
	}
}

// unquote decodes a raw string token (with quotes) into dst.
func unquote(dst, raw []byte, escaped bool) []byte {
	body := raw[1 : len(raw)-1]
	if !escaped {
		return append(dst, body...)
	}
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch body[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(unhex(body[i+2])<<12 | unhex(body[i+3])<<8 | unhex(body[i+4])<<4 | unhex(body[i+5]))
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
				lo := rune(unhex(body[i+2])<<12 | unhex(body[i+3])<<8 | unhex(body[i+4])<<4 | unhex(body[i+5]))
				if lo >= 0xDC00 && lo < 0xE000 {
					r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, body[i+1])
		}
		i += 2
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain8 reports whether none of the 8 bytes in v is a quote, a backslash, a control character
// or non-ASCII (the classic "has zero byte" bit tricks, exact for these tests).
func plain8(v uint64) bool {
	ctl := (v - lsb*0x20) & ^v & msb
	quote := v ^ (lsb * '"')
	quote = (quote - lsb) & ^quote & msb
	bs := v ^ (lsb * '\\')
	bs = (bs - lsb) & ^bs & msb
	return (ctl | quote | bs | v&msb) == 0
}
