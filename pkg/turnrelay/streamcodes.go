package turnrelay

import (
	"bytes"
	"encoding/binary"

	"github.com/pion/stun/v4"
)

// pion answers every failed Connect with 447 and a ConnectionBind without
// MESSAGE-INTEGRITY. frameConn sees both the request and pion's answer on the stream
// connections RFC 6062 serves, so it gives the Connect answer the code RFC 6062 and RFC
// 8656 ask for, in place: 403 for a refused peer or a Connect on a UDP allocation, 486 and
// 508 for the peer connection caps (the error response carries only ERROR-CODE: no reason
// text, MESSAGE-INTEGRITY or FINGERPRINT covers the bytes); and it signs the ConnectionBind
// success. (Refused TCP Allocates get their codes from authenticator.checkAllocate.)

// STUN message types (method and class bits) and attributes used here.
const (
	typeConnectError    = 0x011a
	typeConnBindRequest = 0x000b
	typeConnBindSuccess = 0x010b
	attrUsername        = 0x0006
	protoTCP            = 6
)

// walkAttrs calls f with each attribute of a STUN message. msg is untrusted: attributes
// are walked within its bounds only.
func walkAttrs(msg []byte, f func(typ uint16, v []byte)) {
	if len(msg) < 20 {
		return
	}
	end := min(len(msg), 20+int(binary.BigEndian.Uint16(msg[2:])))
	for off := 20; off+4 <= end; {
		typ := binary.BigEndian.Uint16(msg[off:])
		v := off + 4
		n := int(binary.BigEndian.Uint16(msg[off+2:]))
		if v+n > end {
			return
		}
		f(typ, msg[v:v+n])
		off = v + (n+3)&^3
	}
}

func setErrorCode(p []byte, code int) {
	p[26], p[27] = byte(code/100), byte(code%100)
}

// noteRequest remembers a ConnectionBind's transaction and username, for signing its
// success (signBindSuccess). It runs on pion's read loop for this connection, like the
// write of the answer.
func (c *frameConn) noteRequest(msg []byte) {
	if len(msg) < 20 || binary.BigEndian.Uint16(msg) != typeConnBindRequest {
		return
	}
	copy(c.bindTxn[:], msg[8:20])
	c.bindUser = ""
	walkAttrs(msg, func(typ uint16, v []byte) {
		if typ == attrUsername {
			c.bindUser = string(v)
		}
	})
}

// fixResponse puts the right code into pion's answer to a Connect.
func (c *frameConn) fixResponse(p []byte) {
	if len(p) != 28 || c.l.relays == nil || binary.BigEndian.Uint16(p) != typeConnectError {
		return
	}
	if code, ok := bareError(p); !ok || code != codeConnFailure {
		return
	}
	a := c.l.relays.forClient(c.key)
	if a == nil {
		setErrorCode(p, codeForbidden) // Connect on a UDP allocation (coturn: 403)
		return
	}
	if code := a.refusal.Swap(0); code != 0 {
		setErrorCode(p, int(code))
	}
}

// signBindSuccess returns pion's ConnectionBind success response with the
// MESSAGE-INTEGRITY and FINGERPRINT it lacks (RFC 8489 §9.2.4: a response to a request
// authenticated with long-term credentials carries them; coturn's client refuses the
// connection without), or nil to send p as it is.
func (c *frameConn) signBindSuccess(p []byte) []byte {
	if !isConnectionBindSuccess(p) || c.bindUser == "" || [12]byte(p[8:20]) != c.bindTxn {
		return nil
	}
	m := &stun.Message{Raw: bytes.Clone(p)}
	if m.Decode() != nil || m.Contains(stun.AttrMessageIntegrity) {
		return nil
	}
	pws, err := c.l.auth.secrets.Passwords(c.bindUser)
	if err != nil || len(pws) == 0 {
		return nil
	}
	if stun.MessageIntegrity(c.l.auth.key(c.bindUser, c.key, pws)).AddTo(m) != nil || stun.Fingerprint.AddTo(m) != nil {
		return nil
	}
	return m.Raw
}

func isConnectionBindSuccess(p []byte) bool {
	return len(p) >= 20 && binary.BigEndian.Uint16(p) == typeConnBindSuccess &&
		binary.BigEndian.Uint32(p[4:]) == magicCookie
}
