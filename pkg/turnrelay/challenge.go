package turnrelay

import (
	"encoding/binary"
	"sync"

	"github.com/pion/stun/v4"
)

// challenge is a request the authenticator expects pion to refuse with the wrong code;
// the listener replaces pion's answer to that transaction with the right one.
//
// 401: pion answers a refused credential (unknown or malformed username, wrong realm,
// expired, no matching secret, wrong password) with a bare 400 Bad Request. RFC 8489
// §9.2.4, RFC 8656 and coturn answer 401 Unauthenticated with REALM and NONCE instead, so a
// client knows its credential (not its message) was refused and may retry with a new one.
// A stale nonce never gets here: pion answers it with 438 and a fresh nonce before
// asking for the credential.
//
// 440: an Allocate asking (REQUESTED-ADDRESS-FAMILY) for a family the relay does not
// serve fails in our relay address generator, which pion answers with 508; RFC 8656 §7.2
// says 440 Address Family not Supported. Likewise 442 and 400 for the TCP relay
// allocations (RFC 6062) we refuse (authenticator.checkAllocate); a TCP Allocate with
// DONT-FRAGMENT, which pion answers 420, gets RFC 6062 §5.1's 400 as well.
type challenge struct {
	tx     [stun.TransactionIDSize]byte
	method stun.Method
	code   stun.ErrorCode // 401, 440, 442 or 400; 0 = nothing to replace
	nonce  string         // for 401: the request's own nonce, which pion has just accepted
	pion   int            // the code pion answers with, when not the usual one (replaces)
}

// replaces is the code pion answers with where c.code is right.
func (c challenge) replaces() int {
	if c.pion != 0 {
		return c.pion
	}
	if c.code == stun.CodeUnauthorized {
		return 400
	}
	return 508
}

// pendingChallenge holds the refused request pion is handling on one UDP socket or TCP
// connection. pion handles their requests one at a time on the goroutine that read them,
// so one slot is enough; the lock is for the other writers (Data indications).
type pendingChallenge struct {
	mu sync.Mutex
	c  challenge
}

// store records the request just read (an empty challenge clears the slot).
func (p *pendingChallenge) store(c challenge) {
	p.mu.Lock()
	p.c = c
	p.mu.Unlock()
}

// replacement returns the response to send instead of b when b is pion's bare error
// answer to the pending request, or nil to send b unchanged.
func (p *pendingChallenge) replacement(b []byte, realm string) []byte {
	code, ok := bareError(b)
	if !ok {
		return nil
	}
	p.mu.Lock()
	c := p.c
	if c.code != 0 && [stun.TransactionIDSize]byte(b[8:20]) == c.tx && code == c.replaces() {
		p.c = challenge{}
	} else {
		c.code = 0
	}
	p.mu.Unlock()
	var setters []stun.Setter
	switch c.code {
	case stun.CodeUnauthorized:
		setters = []stun.Setter{&stun.ErrorCodeAttribute{Code: c.code, Reason: []byte("Unauthorized")},
			stun.NewNonce(c.nonce), stun.NewRealm(realm)}
	case stun.CodeAddrFamilyNotSupported:
		setters = []stun.Setter{&stun.ErrorCodeAttribute{Code: c.code, Reason: []byte("Address Family not Supported")}}
	case stun.CodeUnsupportedTransProto:
		setters = []stun.Setter{&stun.ErrorCodeAttribute{Code: c.code, Reason: []byte("TCP relay allocations are not offered")}}
	case stun.CodeBadRequest:
		setters = []stun.Setter{&stun.ErrorCodeAttribute{Code: c.code, Reason: []byte("TCP relay needs a TCP or TLS connection and no EVEN-PORT, RESERVATION-TOKEN or DONT-FRAGMENT")}}
	default:
		return nil
	}
	setters = append([]stun.Setter{&stun.Message{TransactionID: c.tx}, stun.NewType(c.method, stun.ClassErrorResponse)}, setters...)
	msg, err := stun.Build(append(setters, stun.Fingerprint)...)
	if err != nil {
		return nil
	}
	return msg.Raw
}

// bareError matches pion's refusals: an error response whose only attribute is an
// ERROR-CODE without reason text (20-byte header + 8-byte attribute), possibly followed by
// UNKNOWN-ATTRIBUTES (its 420); it returns the code.
func bareError(b []byte) (int, bool) {
	if len(b) < 28 || b[0]&0x01 != 0x01 || b[1]&0x10 != 0x10 || int(binary.BigEndian.Uint16(b[2:])) != len(b)-20 ||
		binary.BigEndian.Uint16(b[20:]) != uint16(stun.AttrErrorCode) || binary.BigEndian.Uint16(b[22:]) != 4 {
		return 0, false
	}
	// Nothing else, or UNKNOWN-ATTRIBUTES (pion's 420 for DONT-FRAGMENT).
	if rest := b[28:]; len(rest) != 0 && (len(rest) < 4 ||
		binary.BigEndian.Uint16(rest) != uint16(stun.AttrUnknownAttributes) ||
		(int(binary.BigEndian.Uint16(rest[2:]))+3)&^3 != len(rest)-4) {
		return 0, false
	}
	return int(b[26]&0x07)*100 + int(b[27]), true
}
