package tracker

import (
	"errors"
	"math/rand/v2"
	"sync"
)

// Endpoint is where a peer's messages go: a local connection here; a registry shared by several
// tracker replicas would add endpoints that forward to the replica holding the connection.
type Endpoint interface {
	// Send queues one complete text message; false if the endpoint is gone or refused it.
	Send(msg []byte, b *batch) bool
}

// Counts are a swarm's seeders (complete) and leechers (incomplete).
type Counts struct {
	Complete, Incomplete int
}

// Totals are process-wide figures for /stats.json and metrics: never a list of rooms.
type Totals struct {
	Swarms, Peers, Seeders int
}

// Registry is the swarm state. The tracker talks to it only through this interface so that a
// later shared implementation can put several replicas behind one load balancer.
type Registry interface {
	// Announce adds or refreshes (infoHash, peerID) on owner, moving the peer to owner if it was
	// bound elsewhere. For an answer it returns the endpoint of toPeer in the same swarm; otherwise
	// up to want distinct random other peers' endpoints, appended to dst.
	Announce(owner *conn, a *announceArgs, dst []Endpoint) (Counts, []Endpoint, error)
	// Leave removes the peer if owner still holds it.
	Leave(owner *conn, infoHash, peerID ID) Counts
	// Scrape fills counts for each hash (zeros for unknown ones).
	Scrape(hashes []ID, dst []Counts) []Counts
	// DropConn removes every peer owner still holds.
	DropConn(owner *conn)
	// Expire removes peers not seen since before cutoff and deletes empty swarms; returns how many.
	Expire(cutoff int64) int
	Totals() Totals
	// Hashes lists up to max info_hashes, for the optional full scrape.
	Hashes(dst []ID, max int) []ID
}

type announceArgs struct {
	infoHash, peerID ID
	seeder           bool
	now              int64
	want             int
	answerTo         *ID
}

// Refusals from the registry; the tracker turns them into failure replies.
var (
	ErrSwarmFull     = errors.New("swarm is full")
	ErrTooManySwarms = errors.New("too many swarms on this connection")
	ErrTrackerFull   = errors.New("tracker holds too many swarms")
	errUnknownPeer   = errors.New("no peer with that to_peer_id in this swarm")
	errAnswerSelf    = errors.New("answer addressed to self")
)

// peer is one membership: a peer_id in one swarm, bound to the connection that announced it last.
type peer struct {
	id      ID
	swarm   *swarm
	owner   *conn
	seeder  bool
	seen    int64 // unix seconds of the last announce
	idx     int   // position in swarm.list
	removed bool
}

type swarm struct {
	hash    ID
	peers   map[ID]*peer
	list    []*peer // for uniform random choice
	seeders int
}

func (s *swarm) counts() Counts {
	return Counts{Complete: s.seeders, Incomplete: len(s.list) - s.seeders}
}

const shardCount = 32

// Memory is the in-process Registry, sharded by info_hash so the event loops rarely contend.
type Memory struct {
	shards        [shardCount]shard
	maxPeers      int
	maxSwarms     int
	maxConnSwarms int
	mu            sync.Mutex // guards swarmCount across shards
	swarmCount    int
}

type shard struct {
	mu     sync.Mutex
	swarms map[ID]*swarm
	peers  int
	seeds  int
}

// NewMemory returns an empty registry with the given limits.
func NewMemory(maxPeersPerSwarm, maxSwarms, maxSwarmsPerConn int) *Memory {
	m := &Memory{maxPeers: maxPeersPerSwarm, maxSwarms: maxSwarms, maxConnSwarms: maxSwarmsPerConn}
	for i := range m.shards {
		m.shards[i].swarms = map[ID]*swarm{}
	}
	return m
}

func (m *Memory) shard(h *ID) *shard {
	// info_hashes are SHA-1 output (or trystero's base36 of it): any bytes spread well.
	x := uint32(h[0]) | uint32(h[7])<<8 | uint32(h[13])<<16 | uint32(h[19])<<24
	return &m.shards[(x*2654435761)>>27]
}

// Announce implements Registry.
func (m *Memory) Announce(owner *conn, a *announceArgs, dst []Endpoint) (Counts, []Endpoint, error) {
	sh := m.shard(&a.infoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw := sh.swarms[a.infoHash]
	if sw == nil {
		if !m.reserveSwarm() {
			return Counts{}, dst, ErrTrackerFull
		}
		sw = &swarm{hash: a.infoHash, peers: make(map[ID]*peer, 2)}
		sh.swarms[a.infoHash] = sw
	}
	p := sw.peers[a.peerID]
	switch {
	case p == nil:
		if len(sw.list) >= m.maxPeers {
			m.dropIfEmpty(sh, sw)
			return sw.counts(), dst, ErrSwarmFull
		}
		p = &peer{id: a.peerID, swarm: sw, owner: owner, idx: len(sw.list)}
		if !owner.own(p, m.maxConnSwarms) {
			m.dropIfEmpty(sh, sw)
			return sw.counts(), dst, ErrTooManySwarms
		}
		sw.peers[a.peerID] = p
		sw.list = append(sw.list, p)
		sh.peers++
	case p.owner != owner:
		// The peer reconnected: it now lives on the newest connection, and the old connection's
		// close must not remove it (the reference gets both wrong).
		if !owner.own(p, m.maxConnSwarms) {
			return sw.counts(), dst, ErrTooManySwarms
		}
		p.owner.disown(p)
		p.owner = owner
	}
	// Once a seeder, always a seeder while the peer lives, as in the reference: an update
	// without left (trystero sends none) must not turn it back into a leecher.
	if a.seeder && !p.seeder {
		sw.seeders++
		sh.seeds++
		p.seeder = true
	}
	p.seen = a.now

	if a.answerTo != nil {
		if *a.answerTo == a.peerID {
			return sw.counts(), dst, errAnswerSelf
		}
		to := sw.peers[*a.answerTo]
		if to == nil {
			return sw.counts(), dst, errUnknownPeer
		}
		return sw.counts(), append(dst, to.owner), nil
	}
	others := len(sw.list) - 1
	want := min(a.want, others)
	// Partial Fisher-Yates over the swarm list: a uniform sample of distinct peers, never self.
	// Reordering the list is harmless; only idx has to follow.
	picked := 0
	for i := 0; picked < want && i < len(sw.list); i++ {
		j := i + rand.IntN(len(sw.list)-i)
		sw.list[i], sw.list[j] = sw.list[j], sw.list[i]
		sw.list[i].idx, sw.list[j].idx = i, j
		if sw.list[i] == p {
			continue
		}
		dst = append(dst, sw.list[i].owner)
		picked++
	}
	return sw.counts(), dst, nil
}

func (m *Memory) reserveSwarm() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.swarmCount >= m.maxSwarms {
		return false
	}
	m.swarmCount++
	return true
}

// removeLocked takes p out of its swarm; the caller holds the shard lock.
func (m *Memory) removeLocked(sh *shard, p *peer) {
	sw := p.swarm
	last := len(sw.list) - 1
	sw.list[p.idx] = sw.list[last]
	sw.list[p.idx].idx = p.idx
	sw.list[last] = nil
	sw.list = sw.list[:last]
	delete(sw.peers, p.id)
	if p.seeder {
		sw.seeders--
		sh.seeds--
	}
	sh.peers--
	p.removed = true
	p.owner.disown(p)
	m.dropIfEmpty(sh, sw)
}

func (m *Memory) dropIfEmpty(sh *shard, sw *swarm) {
	if len(sw.list) > 0 {
		return
	}
	delete(sh.swarms, sw.hash)
	m.mu.Lock()
	m.swarmCount--
	m.mu.Unlock()
}

// Leave implements Registry.
func (m *Memory) Leave(owner *conn, infoHash, peerID ID) Counts {
	sh := m.shard(&infoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw := sh.swarms[infoHash]
	if sw == nil {
		return Counts{}
	}
	if p := sw.peers[peerID]; p != nil && p.owner == owner {
		m.removeLocked(sh, p)
	}
	return sw.counts()
}

// Scrape implements Registry.
func (m *Memory) Scrape(hashes []ID, dst []Counts) []Counts {
	for i := range hashes {
		sh := m.shard(&hashes[i])
		sh.mu.Lock()
		var c Counts
		if sw := sh.swarms[hashes[i]]; sw != nil {
			c = sw.counts()
		}
		sh.mu.Unlock()
		dst = append(dst, c)
	}
	return dst
}

// DropConn implements Registry.
func (m *Memory) DropConn(owner *conn) {
	for _, p := range owner.takeOwned() {
		sh := m.shard(&p.swarm.hash)
		sh.mu.Lock()
		if !p.removed && p.owner == owner {
			m.removeLocked(sh, p)
		}
		sh.mu.Unlock()
	}
}

// Expire implements Registry.
func (m *Memory) Expire(cutoff int64) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, sw := range sh.swarms {
			for j := len(sw.list) - 1; j >= 0; j-- {
				if j < len(sw.list) && sw.list[j].seen < cutoff {
					m.removeLocked(sh, sw.list[j])
					n++
				}
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Totals implements Registry.
func (m *Memory) Totals() Totals {
	var t Totals
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		t.Swarms += len(sh.swarms)
		t.Peers += sh.peers
		t.Seeders += sh.seeds
		sh.mu.Unlock()
	}
	return t
}

// Hashes implements Registry.
func (m *Memory) Hashes(dst []ID, max int) []ID {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for h := range sh.swarms {
			if len(dst) >= max {
				break
			}
			dst = append(dst, h)
		}
		sh.mu.Unlock()
	}
	return dst
}
