package turnrelay

import (
	"crypto/subtle"
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// authenticator is pion's AuthHandler over TURN REST credentials.
//
// Rotation: pion asks the handler for one key and checks MESSAGE-INTEGRITY itself, so it
// cannot try several secrets. The listener sockets therefore show every authenticated
// request to inspect first; when more than one secret is configured, inspect finds the
// secret whose key verifies the message and remembers the password for that username.
// The handler then returns that key. A username is bound to one secret (its password is
// an HMAC under it), so the memo is a pure function of the username and the secret list.
//
// Expiry: the credential's expiry is checked when an allocation is created. Refresh,
// CreatePermission and ChannelBind of a live allocation are accepted past it until the
// allocation is auth.max_session old, so a call is not cut when its credential lapses
// (coturn and LiveKit behave the same) yet nobody holds a relay forever with one credential.
//
// Refusals: inspect also predicts pion's verdict, so the listeners can answer a refused
// credential with 401 rather than pion's 400 (challenge.go).
type authenticator struct {
	secrets    *turncred.Secrets
	realm      string
	maxSession time.Duration
	q          *quotas
	m          *metrics
	now        func() time.Time
	// families[1] and [2]: whether IPv4 and IPv6 relays are served (the values of
	// REQUESTED-ADDRESS-FAMILY), so an Allocate for another family gets 440, not 508.
	families [3]bool
	// tcpRelay is relay.tcp_allocations (RFC 6062).
	tcpRelay bool

	mu       sync.Mutex
	verified map[memoKey]verifiedPassword
}

// memoKey: the same username can be minted under two secrets (same expiry second, same
// id), so the memo is per client 5-tuple as well.
type memoKey struct {
	client   clientKey
	username string
}

type verifiedPassword struct {
	password string
	expires  time.Time
}

// maxVerified bounds the memo; only verified (so credential-holding) usernames enter it.
const maxVerified = 100_000

func (a *authenticator) handle(ra *turn.RequestAttributes) (string, []byte, bool) {
	k, _ := keyOf(ra.SrcAddr)
	userID, pws, reason := a.check(ra.Username, ra.Realm, ra.Method, k)
	if reason != "" {
		return a.fail(reason)
	}
	return userID, a.key(ra.Username, k, pws), true
}

// key is the long-term key for username from client k: the password under the secret
// observe found for it, else the newest secret's.
func (a *authenticator) key(username string, k clientKey, pws []string) []byte {
	pw := pws[0]
	if len(pws) > 1 {
		if v, ok := a.lookup(memoKey{k, username}); ok && contains(pws, v) {
			pw = v
		}
	}
	return turn.GenerateAuthKey(username, a.realm, pw)
}

// check decides everything about a request's credential but its MESSAGE-INTEGRITY: it
// returns the user id and the candidate passwords, or why the credential is refused.
func (a *authenticator) check(username, realm string, method stun.Method, k clientKey) (string, []string, string) {
	exp, id, err := turncred.ParseUsername(username)
	if err != nil {
		return "", nil, authMalformed
	}
	if realm != a.realm {
		return "", nil, authRealm
	}
	if id == "" {
		id = username // bare-expiry usernames: each credential is its own user
	}
	now := a.now()
	if method == stun.MethodAllocate {
		if !now.Before(exp) {
			return "", nil, authExpired
		}
	} else {
		start, live := a.q.started(k)
		if !live && method == stun.MethodConnectionBind {
			// An RFC 6062 data connection has no allocation of its own; it joins one of
			// the user's (pion checks which), so it lives as long as they do.
			start, live = a.q.newestStart(id)
		}
		switch {
		case live && now.Sub(start) > a.maxSession:
			return "", nil, authSessionLong
		case !live && !now.Before(exp):
			return "", nil, authExpired
		}
	}
	pws, err := a.secrets.Passwords(username)
	if err != nil || len(pws) == 0 {
		return "", nil, authNoSecret
	}
	return id, pws, ""
}

func (a *authenticator) fail(reason string) (string, []byte, bool) {
	a.m.authFailures.WithLabelValues(reason).Inc()
	return "", nil, false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if subtle.ConstantTimeCompare([]byte(v), []byte(s)) == 1 {
			return true
		}
	}
	return false
}

func (a *authenticator) lookup(k memoKey) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.verified[k]
	return v.password, ok
}

// inspect is called with every STUN message a listener reads from client k, before pion
// handles it; it never changes raw. For an authenticated request (MESSAGE-INTEGRITY,
// USERNAME, REALM and NONCE present) it decides, as pion's AuthHandler and integrity check
// will, whether the credential is refused, and returns that request's challenge so the
// listener can turn pion's 400 into 401 (see challenge); otherwise the zero challenge. With several secrets it also
// remembers which one verifies the message, for handle.
func (a *authenticator) inspect(raw []byte, k clientKey) challenge {
	// Binding requests (ICE's STUN checks, the bulk of requests) are never authenticated.
	if !isSTUNRequest(raw) || binary.BigEndian.Uint16(raw) == bindingRequest {
		return challenge{}
	}
	msg := &stun.Message{Raw: raw}
	if err := msg.Decode(); err != nil || !msg.Contains(stun.AttrMessageIntegrity) {
		return challenge{}
	}
	var user stun.Username
	var realm stun.Realm
	var nonce stun.Nonce
	if user.GetFrom(msg) != nil || realm.GetFrom(msg) != nil || nonce.GetFrom(msg) != nil {
		return challenge{} // pion answers 400 Bad Request, as RFC 8489 §9.2.4 asks
	}
	refused := challenge{tx: msg.TransactionID, method: msg.Type.Method, code: stun.CodeUnauthorized, nonce: nonce.String()}
	username := user.String()
	_, pws, reason := a.check(username, realm.String(), msg.Type.Method, k)
	if reason != "" {
		return refused
	}
	verifies := func(pw string) bool {
		// Check restores the header it adjusts, so raw is unchanged for pion.
		return stun.MessageIntegrity(turn.GenerateAuthKey(username, a.realm, pw)).Check(msg) == nil
	}
	if len(pws) == 1 {
		if verifies(pws[0]) {
			return a.checkAllocate(msg, k)
		}
		return refused
	}
	mk := memoKey{k, username}
	if pw, ok := a.lookup(mk); ok && contains(pws, pw) && verifies(pw) {
		return a.checkAllocate(msg, k)
	}
	for _, pw := range pws {
		if verifies(pw) {
			exp, _, _ := turncred.ParseUsername(username)
			a.remember(mk, pw, exp)
			return a.checkAllocate(msg, k)
		}
	}
	return refused
}

// checkAllocate returns the challenge for an authenticated Allocate that our relay
// address generators will refuse, so pion's 508 becomes the code RFC 8656 / RFC 6062 give:
// 442 for a TCP relay when relay.tcp_allocations is off (coturn's no-tcp-relay), 400 for a
// TCP relay asked over UDP or with EVEN-PORT / RESERVATION-TOKEN / DONT-FRAGMENT (RFC 6062
// §5.1), 440 for
// a REQUESTED-ADDRESS-FAMILY the relay does not serve. Else the zero challenge. Unknown
// family values pion answers with 440 itself.
func (a *authenticator) checkAllocate(msg *stun.Message, k clientKey) challenge {
	if msg.Type.Method != stun.MethodAllocate {
		return challenge{}
	}
	refuse := func(code stun.ErrorCode) challenge {
		return challenge{tx: msg.TransactionID, method: msg.Type.Method, code: code}
	}
	if v, err := msg.Get(stun.AttrRequestedTransport); err == nil && len(v) == 4 && v[0] == protoTCP {
		switch {
		case !a.tcpRelay:
			return refuse(stun.CodeUnsupportedTransProto)
		case !k.tcp:
			return refuse(stun.CodeBadRequest)
		case msg.Contains(stun.AttrEvenPort) || msg.Contains(stun.AttrReservationToken):
			return refuse(stun.CodeBadRequest)
		case msg.Contains(stun.AttrDontFragment):
			c := refuse(stun.CodeBadRequest)
			c.pion = int(stun.CodeUnknownAttribute) // pion treats it as unknown and answers 420
			return c
		}
	}
	v, err := msg.Get(stun.AttrRequestedAddressFamily)
	if err != nil || len(v) != 4 || (v[0] != 1 && v[0] != 2) || a.families[v[0]] {
		return challenge{}
	}
	return refuse(stun.CodeAddrFamilyNotSupported)
}

func (a *authenticator) remember(k memoKey, pw string, exp time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verified == nil {
		a.verified = map[memoKey]verifiedPassword{}
	}
	if len(a.verified) >= maxVerified {
		// Drop what can no longer start an allocation or stay alive; if that is not
		// enough, start over (the next request re-verifies).
		cutoff := a.now().Add(-a.maxSession)
		for u, v := range a.verified {
			if v.expires.Before(cutoff) {
				delete(a.verified, u)
			}
		}
		if len(a.verified) >= maxVerified {
			clear(a.verified)
		}
	}
	a.verified[k] = verifiedPassword{password: pw, expires: exp}
}

// bindingRequest is the STUN message type of a Binding request.
const bindingRequest = 0x0001

// isSTUNRequest: top two bits zero, magic cookie, request class (C1=C0=0).
func isSTUNRequest(b []byte) bool {
	if len(b) < 20 || b[0]&0xc0 != 0 {
		return false
	}
	if b[4] != 0x21 || b[5] != 0x12 || b[6] != 0xa4 || b[7] != 0x42 {
		return false
	}
	return b[0]&0x01 == 0 && b[1]&0x10 == 0
}
