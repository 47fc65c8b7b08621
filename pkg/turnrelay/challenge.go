package turnrelay

import (
	"encoding/binary"
	"sync"

	"github.com/pion/stun/v4"
)

// challenge is an authenticated request whose credential the authenticator expects pion to
// refuse. pion answers a refused credential (unknown or malformed username, wrong realm,
// expired, no matching secret, wrong password) with a bare 400 Bad Request. RFC 8489
// §9.2.4, RFC 8656 and coturn answer 401 Unauthenticated with REALM and NONCE instead, so a
// client knows its credential (not its message) was refused and may retry with a new one.
// A stale nonce never gets here: pion answers it with 438 and a fresh nonce before
// asking for the credential.
type challenge struct {
	tx     [stun.TransactionIDSize]byte
	method stun.Method
	nonce  string // the request's own nonce: pion has just accepted it
	set    bool
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

// unauthorized returns the 401 to send instead of b when b is pion's 400 answer to the
// pending refused request, or nil to send b unchanged.
func (p *pendingChallenge) unauthorized(b []byte, realm string) []byte {
	if !isBadRequest(b) {
		return nil
	}
	p.mu.Lock()
	c := p.c
	if c.set && [stun.TransactionIDSize]byte(b[8:20]) == c.tx {
		p.c = challenge{}
	} else {
		c.set = false
	}
	p.mu.Unlock()
	if !c.set {
		return nil
	}
	msg, err := stun.Build(&stun.Message{TransactionID: c.tx},
		stun.NewType(c.method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized, Reason: []byte("Unauthorized")},
		stun.NewNonce(c.nonce), stun.NewRealm(realm), stun.Fingerprint)
	if err != nil {
		return nil
	}
	return msg.Raw
}

// isBadRequest matches pion's refusal of a credential: an error response whose only
// attribute is ERROR-CODE 400 without reason text (20-byte header + 8-byte attribute).
func isBadRequest(b []byte) bool {
	return len(b) == 28 && b[0]&0x01 == 0x01 && b[1]&0x10 == 0x10 && binary.BigEndian.Uint16(b[2:]) == 8 &&
		binary.BigEndian.Uint16(b[20:]) == uint16(stun.AttrErrorCode) && binary.BigEndian.Uint16(b[22:]) == 4 &&
		b[26] == 4 && b[27] == 0
}
