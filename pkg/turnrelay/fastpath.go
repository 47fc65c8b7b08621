package turnrelay

import (
	"encoding/binary"
	"maps"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
)

// The fast path relays UDP clients' data without entering pion: ChannelData and Send
// indications from the client, ChannelData and Data indications back. pion allocates
// several objects, formats strings and hops goroutines for every datagram, which made it
// cost about twice coturn's CPU per packet. pion stays the control plane (auth,
// allocations, permissions, channel binding and their timers) and tells us what it decided
// through its EventHandler; each allocation's relay socket holds an immutable snapshot of
// its channels and permissions, replaced on every change. TCP/TLS clients and anything
// unexpected still go through pion.
//
// Semantics are pion's: a permission lives exactly as long as pion's (created by
// CreatePermission or ChannelBind, refreshed by either, removed when pion's 300 s timer
// fires or the allocation goes: pion reports creation and removal, and a refresh changes
// nothing we hold); a bound channel lives until pion deletes it, and peer datagrams on it
// go out as ChannelData whatever the permission; data refreshes neither.

// permissionLifetime is RFC 8656's 300 s, handed to pion (which runs the timers); tests
// shorten it.
var permissionLifetime = 5 * time.Minute

// fastAlloc is one UDP client's allocation as the workers see it. It is never mutated.
type fastAlloc struct {
	client netip.AddrPort
	turn   *rawUDP // the listener socket the client talks to
	chans  table[uint16, netip.AddrPort]
	peers  table[netip.AddrPort, uint16]
	perms  table[netip.Addr, struct{}]
}

// allocKey is the 5-tuple of a UDP allocation (the protocol is implied).
type allocKey struct {
	listen, client netip.AddrPort
}

// allocState is the control plane's mutable copy of a fastAlloc, guarded by dataplane.mu.
type allocState struct {
	rc    *relayConn
	turn  *rawUDP
	chans map[uint16]netip.AddrPort
	perms map[netip.Addr]struct{}
}

type dataplane struct {
	relays *relays
	policy *netpolicy.Policy
	turns  []*rawUDP // listener sockets

	allocs sync.Map // allocKey → *relayConn; read lock-free by the workers

	mu    sync.Mutex // serialises pion's events
	state map[allocKey]*allocState
}

func newDataplane(r *relays, p *netpolicy.Policy, turns []*rawUDP) *dataplane {
	return &dataplane{relays: r, policy: p, turns: turns, state: map[allocKey]*allocState{}}
}

// lookup finds the fast state of the allocation on this listener socket's 5-tuple.
func (d *dataplane) lookup(listen, client netip.AddrPort) (*relayConn, *fastAlloc) {
	v, ok := d.allocs.Load(allocKey{listen: listen, client: client})
	if !ok {
		return nil, nil
	}
	rc := v.(*relayConn)
	return rc, rc.fast.Load()
}

// channelData relays one ChannelData datagram from a client if its channel is bound.
func (d *dataplane) channelData(s *udpSocket, from netip.AddrPort, pkt []byte) bool {
	size := int(binary.BigEndian.Uint16(pkt[2:]))
	if 4+size > len(pkt) {
		return false // malformed: let pion refuse it
	}
	rc, fa := d.lookup(s.raw.local, from)
	if fa == nil {
		return false
	}
	peer, ok := fa.chans.get(binary.BigEndian.Uint16(pkt))
	if !ok {
		return false
	}
	ctr := s.w.ctr
	rc.writeFast(pkt[4:4+size], peer, ctr)
	ctr.inc(ctrFastChannel)
	return true
}

// sendIndication relays one Send indication from a client if it is plain and the
// allocation holds a permission for the peer's IP; otherwise pion handles it.
func (d *dataplane) sendIndication(s *udpSocket, from netip.AddrPort, pkt []byte) bool {
	peer, data, ok := parseSend(pkt)
	if !ok {
		return false
	}
	rc, fa := d.lookup(s.raw.local, from)
	if fa == nil {
		return false
	}
	ip := peer.Addr().Unmap()
	if _, ok := fa.perms.get(ip); !ok {
		return false // pion drops it as it always has
	}
	ctr := s.w.ctr
	// The permission's IP passed the policy when pion granted it (the policy is fixed), so
	// what is left to check per packet is the port.
	if d.policy.CheckPort(peer.Port()) != netpolicy.Allowed {
		ctr.inc(ctrDropPolicy)
		return true
	}
	rc.writeFast(data, netip.AddrPortFrom(ip, peer.Port()), ctr)
	ctr.inc(ctrFastSend)
	return true
}

// key turns pion's 5-tuple into ours; ok is false for TCP/TLS clients.
func (d *dataplane) key(src, dst net.Addr) (allocKey, bool) {
	cu, ok := src.(*net.UDPAddr)
	du, ok2 := dst.(*net.UDPAddr)
	if d == nil || !ok || !ok2 {
		return allocKey{}, false
	}
	return allocKey{listen: unmapAP(du.AddrPort()), client: unmapAP(cu.AddrPort())}, true
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (d *dataplane) allocationCreated(src, dst, relayAddr net.Addr) {
	k, ok := d.key(src, dst)
	if !ok {
		return
	}
	rc := d.relays.lookup(relayAddr)
	var turn *rawUDP
	for _, t := range d.turns {
		if t.local == k.listen {
			turn = t
			break
		}
	}
	if rc == nil || turn == nil {
		return // not ours to shortcut: pion relays it
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &allocState{rc: rc, turn: turn, chans: map[uint16]netip.AddrPort{}, perms: map[netip.Addr]struct{}{}}
	d.state[k] = st
	d.publishLocked(k, st)
	d.allocs.Store(k, rc)
}

func (d *dataplane) allocationDeleted(src, dst net.Addr) {
	k, ok := d.key(src, dst)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.state[k]; st != nil {
		st.rc.fast.Store(nil)
		d.allocs.CompareAndDelete(k, st.rc)
		delete(d.state, k)
	}
}

// update applies f to the allocation's state and publishes the result.
func (d *dataplane) update(src, dst net.Addr, f func(*allocState)) {
	k, ok := d.key(src, dst)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.state[k]; st != nil {
		f(st)
		d.publishLocked(k, st)
	}
}

func (d *dataplane) permissionCreated(src, dst net.Addr, peer net.IP) {
	a, ok := netip.AddrFromSlice(peer)
	// The policy is fixed, so checking the IP once here is checking it for every packet.
	if !ok || d.policy.CheckAddr(a) != netpolicy.Allowed {
		return
	}
	d.update(src, dst, func(st *allocState) { st.perms[a.Unmap()] = struct{}{} })
}

func (d *dataplane) permissionDeleted(src, dst net.Addr, peer net.IP) {
	a, _ := netip.AddrFromSlice(peer)
	d.update(src, dst, func(st *allocState) { delete(st.perms, a.Unmap()) })
}

func (d *dataplane) channelCreated(src, dst, peer net.Addr, num uint16) {
	pu, ok := peer.(*net.UDPAddr)
	if !ok {
		return
	}
	pap := unmapAP(pu.AddrPort())
	if d.policy.CheckAddrPort(pap) != netpolicy.Allowed {
		return
	}
	d.update(src, dst, func(st *allocState) { st.chans[num] = pap })
}

func (d *dataplane) channelDeleted(src, dst net.Addr, num uint16) {
	d.update(src, dst, func(st *allocState) { delete(st.chans, num) })
}

// publishLocked gives the relay socket a fresh snapshot of its allocation.
func (d *dataplane) publishLocked(k allocKey, st *allocState) {
	fa := &fastAlloc{client: k.client, turn: st.turn}
	fa.chans = newTable(st.chans)
	byPeer := make(map[netip.AddrPort]uint16, len(st.chans))
	for n, p := range st.chans {
		byPeer[p] = n
	}
	fa.peers = newTable(byPeer)
	fa.perms = newTable(st.perms)
	st.rc.fast.Store(fa)
}

// table is a read-only lookup: a linear scan over the usual handful of entries, a map
// beyond that.
type table[K comparable, V any] struct {
	keys []K
	vals []V
	m    map[K]V
}

const tableScan = 8

func newTable[K comparable, V any](m map[K]V) table[K, V] {
	if len(m) > tableScan {
		return table[K, V]{m: maps.Clone(m)}
	}
	var t table[K, V]
	for k, v := range m {
		t.keys = append(t.keys, k)
		t.vals = append(t.vals, v)
	}
	return t
}

func (t *table[K, V]) get(k K) (V, bool) {
	if t.m != nil {
		v, ok := t.m[k]
		return v, ok
	}
	for i := range t.keys {
		if t.keys[i] == k {
			return t.vals[i], true
		}
	}
	var zero V
	return zero, false
}
