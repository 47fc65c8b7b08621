package turnrelay

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// clientKey names a client's 5-tuple as pion sees it: transport and source address.
type clientKey struct {
	tcp  bool
	addr netip.AddrPort
}

func keyOf(a net.Addr) (clientKey, bool) {
	switch v := a.(type) {
	case *net.UDPAddr:
		return clientKey{addr: v.AddrPort()}, true
	case *net.TCPAddr:
		return clientKey{tcp: true, addr: v.AddrPort()}, true
	}
	return clientKey{}, false
}

func (k clientKey) ip() netip.Addr { return k.addr.Addr().Unmap() }

// session is one allocation's accounting: who it counts against, when it started and
// which peers it has permissions for.
type session struct {
	user      string
	ip        netip.Addr
	confirmed bool
	at        time.Time // reservation time, then creation time once confirmed
	perms     map[netip.Addr]struct{}
}

// quotas counts allocations per user id, per client IP and in total. A slot is reserved
// in pion's QuotaHandler (before the allocation exists), confirmed when pion reports the
// allocation created, and released when it is deleted, so two concurrent Allocates can
// never both take the last slot. A reservation whose allocation never appeared (the relay
// port could not be opened, say) is released after reservationTTL.
type quotas struct {
	perUser, perIP, total, perms int
	reservationTTL               time.Duration
	now                          func() time.Time

	mu       sync.Mutex
	users    map[string]int
	ips      map[netip.Addr]int
	count    int
	sessions map[clientKey]*session
	pending  map[clientKey]struct{}
}

func newQuotas(q Quotas, now func() time.Time) *quotas {
	return &quotas{
		perUser: q.AllocationsPerUser, perIP: q.AllocationsPerIP, total: q.AllocationsTotal,
		perms: q.PermissionsPerAllocation, reservationTTL: 30 * time.Second, now: now,
		users: map[string]int{}, ips: map[netip.Addr]int{},
		sessions: map[clientKey]*session{}, pending: map[clientKey]struct{}{},
	}
}

// reserve takes a slot for user from src; it returns the refusal reason or "".
func (q *quotas) reserve(user string, src net.Addr) string {
	k, ok := keyOf(src)
	if !ok {
		return refusedFamily
	}
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expirePendingLocked(now)
	if s, dup := q.sessions[k]; dup {
		if s.confirmed {
			// pion answers a second Allocate on a live 5-tuple with 437 before asking us;
			// reaching here means the old one is being replaced: keep the accounting.
			return ""
		}
		q.dropLocked(k, s) // a retry replaces its own stale reservation
	}
	ip := k.ip()
	switch {
	case q.count >= q.total:
		return refusedTotalQuota
	case q.users[user] >= q.perUser:
		return refusedUserQuota
	case q.ips[ip] >= q.perIP:
		return refusedIPQuota
	}
	q.count++
	q.users[user]++
	q.ips[ip]++
	q.sessions[k] = &session{user: user, ip: ip, at: now}
	q.pending[k] = struct{}{}
	return ""
}

// confirm marks src's reservation as a live allocation.
func (q *quotas) confirm(src net.Addr, user string) {
	k, ok := keyOf(src)
	if !ok {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sessions[k]
	if s == nil {
		// Not reserved through us (cannot happen with the QuotaHandler installed); count
		// it anyway so release stays balanced.
		s = &session{user: user, ip: k.ip()}
		q.sessions[k] = s
		q.count++
		q.users[user]++
		q.ips[s.ip]++
	}
	s.confirmed = true
	s.at = q.now()
	delete(q.pending, k)
}

// release frees src's slot.
func (q *quotas) release(src net.Addr) {
	k, ok := keyOf(src)
	if !ok {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.sessions[k]; s != nil {
		q.dropLocked(k, s)
	}
}

func (q *quotas) dropLocked(k clientKey, s *session) {
	delete(q.sessions, k)
	delete(q.pending, k)
	q.count--
	if q.users[s.user]--; q.users[s.user] <= 0 {
		delete(q.users, s.user)
	}
	if q.ips[s.ip]--; q.ips[s.ip] <= 0 {
		delete(q.ips, s.ip)
	}
}

func (q *quotas) expirePendingLocked(now time.Time) {
	for k := range q.pending {
		if s := q.sessions[k]; s == nil || now.Sub(s.at) > q.reservationTTL {
			if s != nil {
				q.dropLocked(k, s)
			}
			delete(q.pending, k)
		}
	}
}

// started returns when client k's allocation was created.
func (q *quotas) started(k clientKey) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.sessions[k]; s != nil && s.confirmed {
		return s.at, true
	}
	return time.Time{}, false
}

// newestStart returns when user's most recent live allocation was created.
func (q *quotas) newestStart(user string) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.users[user] == 0 {
		return time.Time{}, false
	}
	var newest time.Time
	found := false
	for _, s := range q.sessions {
		if s.confirmed && s.user == user && (!found || s.at.After(newest)) {
			newest, found = s.at, true
		}
	}
	return newest, found
}

// mayPermit reports whether src's allocation may add a permission for peer.
func (q *quotas) mayPermit(src net.Addr, peer netip.Addr) bool {
	k, ok := keyOf(src)
	if !ok {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sessions[k]
	if s == nil {
		return true // no allocation: pion refuses the request itself
	}
	if _, has := s.perms[peer]; has {
		return true
	}
	return len(s.perms) < q.perms
}

func (q *quotas) permissionAdded(src net.Addr, peer netip.Addr) {
	k, ok := keyOf(src)
	if !ok {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.sessions[k]; s != nil {
		if s.perms == nil {
			s.perms = map[netip.Addr]struct{}{}
		}
		s.perms[peer] = struct{}{}
	}
}

func (q *quotas) permissionRemoved(src net.Addr, peer netip.Addr) {
	k, ok := keyOf(src)
	if !ok {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.sessions[k]; s != nil {
		delete(s.perms, peer)
	}
}

// usage reports the totals, for tests and drain.
func (q *quotas) usage() (total int, users, ips int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count, len(q.users), len(q.ips)
}
