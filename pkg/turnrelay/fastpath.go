package turnrelay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"

	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
)

// The channel fast path relays ChannelData for UDP clients without entering pion: pion
// allocates several objects and formats strings for every datagram, which made it cost
// about twice coturn's CPU per packet. pion stays the control plane (auth, allocations,
// permissions, channel binding and their timers) and tells us about channels through its
// EventHandler; we keep an immutable snapshot per client and per relay socket. Send and
// Data indications, TCP/TLS clients and anything unexpected still go through pion.
//
// Semantics are pion's: a bound channel implies a permission (pion refreshes both on
// ChannelBind), data does not refresh either, and a channel lives until pion deletes it.

type chanEntry struct {
	num  uint16
	peer netip.AddrPort
}

// clientChannels is one UDP client's allocation as the fast path sees it.
type clientChannels struct {
	relay *relayConn
	list  []chanEntry // replaced, never mutated
}

// fastPath is what a relay socket needs to frame peer datagrams for its client.
type fastPath struct {
	client netip.AddrPort
	turn   *rawUDP
	byPeer map[netip.AddrPort]uint16
}

func (f *fastPath) channelOf(peer netip.AddrPort) (uint16, bool) {
	n, ok := f.byPeer[netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())]
	return n, ok
}

type dataplane struct {
	relays *relays
	policy *netpolicy.Policy
	turn   *rawUDP // peer→client writes leave from the listen address

	mu      sync.RWMutex
	clients map[netip.AddrPort]*clientChannels
}

func newDataplane(r *relays, p *netpolicy.Policy, turn *rawUDP) *dataplane {
	return &dataplane{relays: r, policy: p, turn: turn, clients: map[netip.AddrPort]*clientChannels{}}
}

// fromClient relays one ChannelData datagram if its channel is on the fast path.
func (d *dataplane) fromClient(src netip.AddrPort, pkt []byte) bool {
	if d == nil || len(pkt) < 4 {
		return false
	}
	d.mu.RLock()
	cc := d.clients[src]
	d.mu.RUnlock()
	if cc == nil {
		return false
	}
	num := binary.BigEndian.Uint16(pkt)
	size := int(binary.BigEndian.Uint16(pkt[2:]))
	if 4+size > len(pkt) {
		return false // malformed: let pion refuse it
	}
	for i := range cc.list {
		if cc.list[i].num == num {
			cc.relay.writeFast(pkt[4:4+size], cc.list[i].peer)
			return true
		}
	}
	return false
}

func (d *dataplane) channelCreated(src, relayAddr, peer net.Addr, num uint16) {
	cu, ok := src.(*net.UDPAddr)
	pu, ok2 := peer.(*net.UDPAddr)
	if d == nil || !ok || !ok2 {
		return // TCP/TLS clients stay on pion's path
	}
	pap := pu.AddrPort()
	pap = netip.AddrPortFrom(pap.Addr().Unmap(), pap.Port())
	// The policy is immutable, so checking the peer once here is checking every packet.
	if d.policy.CheckAddrPort(pap) != netpolicy.Allowed {
		return
	}
	rc := d.relays.lookup(relayAddr)
	if rc == nil {
		return
	}
	key := cu.AddrPort()
	d.mu.Lock()
	defer d.mu.Unlock()
	cc := d.clients[key]
	if cc == nil || cc.relay != rc {
		cc = &clientChannels{relay: rc}
	}
	list := make([]chanEntry, 0, len(cc.list)+1)
	for _, e := range cc.list {
		if e.num != num {
			list = append(list, e)
		}
	}
	list = append(list, chanEntry{num: num, peer: pap})
	d.clients[key] = &clientChannels{relay: rc, list: list}
	d.publishLocked(key, rc, list)
}

func (d *dataplane) channelDeleted(src net.Addr, num uint16) {
	cu, ok := src.(*net.UDPAddr)
	if d == nil || !ok {
		return
	}
	key := cu.AddrPort()
	d.mu.Lock()
	defer d.mu.Unlock()
	cc := d.clients[key]
	if cc == nil {
		return
	}
	list := make([]chanEntry, 0, len(cc.list))
	for _, e := range cc.list {
		if e.num != num {
			list = append(list, e)
		}
	}
	d.clients[key] = &clientChannels{relay: cc.relay, list: list}
	d.publishLocked(key, cc.relay, list)
}

func (d *dataplane) allocationDeleted(src net.Addr) {
	cu, ok := src.(*net.UDPAddr)
	if d == nil || !ok {
		return
	}
	key := cu.AddrPort()
	d.mu.Lock()
	defer d.mu.Unlock()
	if cc := d.clients[key]; cc != nil {
		cc.relay.fast.Store(nil)
		delete(d.clients, key)
	}
}

// publishLocked gives the relay socket the peer→channel map for its client.
func (d *dataplane) publishLocked(client netip.AddrPort, rc *relayConn, list []chanEntry) {
	if len(list) == 0 {
		rc.fast.Store(nil)
		return
	}
	byPeer := make(map[netip.AddrPort]uint16, len(list))
	for _, e := range list {
		byPeer[e.peer] = e.num
	}
	rc.fast.Store(&fastPath{client: client, turn: d.turn, byPeer: byPeer})
}
