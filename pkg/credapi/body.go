package credapi

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// bodies holds the JSON that is the same in every response (URI and tracker lists), encoded
// once; per request only the credential is appended. The appended values need no escaping:
// usernames are digits, ':' and [A-Za-z0-9._-]; passwords are standard base64; expiresAt is
// RFC 3339. Tests decode every shape with encoding/json to hold this true.
type bodies struct {
	all      []byte // ["stun:…","turn:…"] for ChitChatter's single RTCIceServer
	stun     []byte // ["stun:…"], nil when no STUN URI is configured
	turn     []byte // ["turn:…","turns:…"]
	trackers []byte // ["wss://…"]
}

func newBodies(urls, trackers []string) bodies {
	var stun, turn []string
	for _, u := range urls {
		if kind, _ := iceKind(u); kind == "stun" {
			stun = append(stun, u)
		} else {
			turn = append(turn, u)
		}
	}
	b := bodies{
		all:      jsonList(append(append([]string{}, stun...), turn...)),
		turn:     jsonList(turn),
		trackers: jsonList(trackers),
	}
	if len(stun) > 0 {
		b.stun = jsonList(stun)
	}
	return b
}

func jsonList(ss []string) []byte {
	if ss == nil {
		ss = []string{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(ss) // []string always encodes
	return bytes.TrimSpace(buf.Bytes())
}

// appendTo writes the response body for ep.
func (b *bodies) appendTo(dst []byte, ep endpoint, c *turncred.Credential, req credRequest) []byte {
	switch ep {
	case epGetConfig:
		// ChitChatter: one RTCIceServer, STUN and TURN URIs together (its list replaces
		// trystero's default STUN servers).
		dst = append(dst, `{"urls":`...)
		dst = append(dst, b.all...)
		dst = appendCred(dst, c, "credential")
		return append(dst, '}')
	case epTurnREST:
		// draft-uberti-behave-turn-rest-00 §2.2.
		dst = append(dst, `{"username":"`...)
		dst = append(dst, c.Username...)
		dst = append(dst, `","password":"`...)
		dst = append(dst, c.Password...)
		dst = append(dst, `","ttl":`...)
		dst = strconv.AppendInt(dst, int64(req.ttl/time.Second), 10)
		dst = append(dst, `,"uris":`...)
		dst = append(dst, b.turn...)
		return append(dst, '}')
	}
	// /v1/ice-servers and /v1/client-config: an RTCConfiguration plus lifetime.
	dst = append(dst, `{"iceServers":[`...)
	if b.stun != nil && !req.relay {
		dst = append(dst, `{"urls":`...)
		dst = append(dst, b.stun...)
		dst = append(dst, `},`...)
	}
	dst = append(dst, `{"urls":`...)
	dst = append(dst, b.turn...)
	dst = appendCred(dst, c, "credential")
	dst = append(dst, `}],"iceTransportPolicy":`...)
	if req.relay {
		dst = append(dst, `"relay"`...)
	} else {
		dst = append(dst, `"all"`...)
	}
	dst = append(dst, `,"ttl":`...)
	dst = strconv.AppendInt(dst, int64(req.ttl/time.Second), 10)
	dst = append(dst, `,"expiresAt":"`...)
	dst = c.Expires.UTC().AppendFormat(dst, time.RFC3339)
	dst = append(dst, '"')
	if ep == epClientConfig {
		dst = append(dst, `,"trackers":`...)
		dst = append(dst, b.trackers...)
	}
	return append(dst, '}')
}

func appendCred(dst []byte, c *turncred.Credential, passwordField string) []byte {
	dst = append(dst, `,"username":"`...)
	dst = append(dst, c.Username...)
	dst = append(dst, `","`...)
	dst = append(dst, passwordField...)
	dst = append(dst, `":"`...)
	dst = append(dst, c.Password...)
	return append(dst, '"')
}

// errorBody is the JSON error every refusal carries.
func errorBody(code, message string) []byte {
	b, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, message})
	return b
}

// newID is the opaque id part of a generated username: 96 random bits, URL-safe base64
// (within [A-Za-z0-9_-], so it is also a valid client-style username).
func newID() string {
	var raw [12]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails on Linux (it panics instead)
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// readParams collects the query and, for a form POST, the body parameters (draft clients put
// them in the query; form posts are the other common spelling). A parameter in both is an error.
func (s *Server) readParams(w http.ResponseWriter, r *http.Request, p *params) error {
	if err := p.parse(r.URL.RawQuery); err != nil {
		return err
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return nil
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		// Other bodies carry nothing we read; drain what the limit allows so keep-alive works.
		_, _ = io.Copy(io.Discard, body)
		return nil
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return &paramError{"bad_request", "the request body is too large (limits.max_body_bytes) or unreadable"}
	}
	return p.parse(string(data))
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }
