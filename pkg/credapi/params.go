package credapi

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// params are the query (and form body) parameters every credential endpoint understands.
// Unknown parameters are ignored: clients add cache busters and tracking tags.
type params struct {
	service  string
	username string
	ttl      string
	key      string
	policy   string
	seen     uint8
}

const (
	seenService = 1 << iota
	seenUsername
	seenTTL
	seenKey
	seenPolicy
)

// paramError is a client mistake, answered with 400 and the given code.
type paramError struct {
	code, message string
}

func (e *paramError) Error() string { return e.code + ": " + e.message }

var (
	errDuplicate = &paramError{"bad_request", "a parameter was given more than once; send each of service, username, ttl, key, iceTransportPolicy at most once"}
	errEncoding  = &paramError{"bad_request", "the query string is not valid percent-encoding"}
	errTooLong   = &paramError{"bad_request", "the query string is too long (at most 2048 bytes)"}
)

// maxQueryBytes bounds the work spent on a query string; legitimate ones are < 200 bytes.
const maxQueryBytes = 2048

// parseParams reads application/x-www-form-urlencoded pairs from raw into p. It never echoes
// values back, so the errors are safe to send and to log.
func (p *params) parse(raw string) error {
	if len(raw) > maxQueryBytes {
		return errTooLong
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		var dst *string
		var bit uint8
		switch name {
		case "service":
			dst, bit = &p.service, seenService
		case "username":
			dst, bit = &p.username, seenUsername
		case "ttl":
			dst, bit = &p.ttl, seenTTL
		case "key":
			dst, bit = &p.key, seenKey
		case "iceTransportPolicy":
			dst, bit = &p.policy, seenPolicy
		default:
			continue
		}
		if p.seen&bit != 0 {
			return errDuplicate
		}
		p.seen |= bit
		if strings.ContainsAny(value, "%+") {
			v, err := url.QueryUnescape(value)
			if err != nil {
				return errEncoding
			}
			value = v
		}
		*dst = value
	}
	return nil
}

var (
	errBadService  = &paramError{"bad_service", "service must be \"turn\" (the TURN REST API: /?service=turn)"}
	errBadUsername = &paramError{"bad_username", "username must be 1-64 characters from A-Z a-z 0-9 . _ - (an opaque id, never a room name); omit it to get a generated id"}
	errBadTTL      = &paramError{"bad_ttl", "ttl must be a whole number of seconds, e.g. ttl=86400"}
	errBadPolicy   = &paramError{"bad_policy", "iceTransportPolicy must be \"all\" or \"relay\""}
)

// validUsername is the [A-Za-z0-9._-]{1,64} rule: no ':' (it would shift coturn's field split)
// and nothing that needs escaping in JSON or logs.
func validUsername(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// clampTTL turns the ttl parameter into a lifetime within [lo, hi]; "" means def.
// Numbers outside the bounds are clamped rather than refused so clients asking for
// "a week" still get the longest lifetime we allow.
func clampTTL(raw string, def, lo, hi time.Duration) (time.Duration, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			if strings.HasPrefix(raw, "-") {
				return lo, nil
			}
			return hi, nil
		}
		return 0, errBadTTL
	}
	switch {
	case n <= int64(lo/time.Second):
		return lo, nil
	case n >= int64(hi/time.Second):
		return hi, nil
	}
	return time.Duration(n) * time.Second, nil
}
