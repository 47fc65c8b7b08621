package turnrelay

import (
	"crypto/subtle"
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
// request to observe first; when more than one secret is configured, observe finds the
// secret whose key verifies the message and remembers the password for that username.
// The handler then returns that key. A username is bound to one secret (its password is
// an HMAC under it), so the memo is a pure function of the username and the secret list.
//
// Expiry: the credential's expiry is checked when an allocation is created. Refresh,
// CreatePermission and ChannelBind of a live allocation are accepted past it until the
// allocation is auth.max_session old, so a call is not cut when its credential lapses
// (coturn and LiveKit behave the same) yet nobody holds a relay forever with one credential.
type authenticator struct {
	secrets    *turncred.Secrets
	realm      string
	maxSession time.Duration
	q          *quotas
	m          *metrics
	now        func() time.Time

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
	exp, id, err := turncred.ParseUsername(ra.Username)
	if err != nil {
		return a.fail(authMalformed)
	}
	if ra.Realm != a.realm {
		return a.fail(authRealm)
	}
	now := a.now()
	if ra.Method == stun.MethodAllocate {
		if !now.Before(exp) {
			return a.fail(authExpired)
		}
	} else {
		start, live := a.q.started(ra.SrcAddr)
		switch {
		case live && now.Sub(start) > a.maxSession:
			return a.fail(authSessionLong)
		case !live && !now.Before(exp):
			return a.fail(authExpired)
		}
	}
	pws, err := a.secrets.Passwords(ra.Username)
	if err != nil {
		return a.fail(authNoSecret)
	}
	pw := pws[0]
	if len(pws) > 1 {
		if k, ok := keyOf(ra.SrcAddr); ok {
			if v, ok := a.lookup(memoKey{k, ra.Username}); ok && contains(pws, v) {
				pw = v
			}
		}
	}
	userID := id
	if userID == "" {
		userID = ra.Username // bare-expiry usernames: each credential is its own user
	}
	return userID, turn.GenerateAuthKey(ra.Username, a.realm, pw), true
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

// multiSecret reports whether observe has work to do.
func (a *authenticator) multiSecret() bool { return a.secrets.Count() > 1 }

// observe is called with every STUN request a listener reads from src, before pion
// handles it. It does nothing unless several secrets are configured and the request
// carries a USERNAME and MESSAGE-INTEGRITY; it never changes raw.
func (a *authenticator) observe(raw []byte, src clientKey) {
	if !isSTUNRequest(raw) || !a.multiSecret() {
		return
	}
	msg := &stun.Message{Raw: raw}
	if err := msg.Decode(); err != nil || !msg.Contains(stun.AttrMessageIntegrity) {
		return
	}
	var user stun.Username
	var realm stun.Realm
	if user.GetFrom(msg) != nil || realm.GetFrom(msg) != nil || realm.String() != a.realm {
		return
	}
	username := user.String()
	exp, _, err := turncred.ParseUsername(username)
	if err != nil {
		return
	}
	k := memoKey{src, username}
	verifies := func(pw string) bool {
		// Check restores the header it adjusts, so raw is unchanged for pion.
		return stun.MessageIntegrity(turn.GenerateAuthKey(username, a.realm, pw)).Check(msg) == nil
	}
	if pw, ok := a.lookup(k); ok && verifies(pw) {
		return
	}
	pws, err := a.secrets.Passwords(username)
	if err != nil {
		return
	}
	for _, pw := range pws {
		if verifies(pw) {
			a.remember(k, pw, exp)
			return
		}
	}
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
