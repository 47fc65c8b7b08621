package tracker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func rid(name string) ID {
	var id ID
	copy(id[:], id20(name))
	return id
}

type regFixture struct {
	t *testing.T
	m *Memory
}

func newReg(t *testing.T, peers, swarms, perConn int) *regFixture {
	return &regFixture{t: t, m: NewMemory(peers, swarms, perConn)}
}

func (f *regFixture) announce(c *conn, hash, peer string, want int, now int64) (Counts, []Endpoint, error) {
	return f.m.Announce(c, &announceArgs{infoHash: rid(hash), peerID: rid(peer), want: want, now: now}, nil)
}

func (f *regFixture) mustAnnounce(c *conn, hash, peer string, want int) []Endpoint {
	f.t.Helper()
	_, dst, err := f.announce(c, hash, peer, want, 1)
	if err != nil {
		f.t.Fatalf("announce %s/%s: %v", hash, peer, err)
	}
	return dst
}

// check verifies the registry's internal bookkeeping: counts, indexes, ownership.
func (f *regFixture) check() {
	f.t.Helper()
	m := f.m
	swarms := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		peers, seeds := 0, 0
		for h, sw := range sh.swarms {
			swarms++
			if len(sw.list) == 0 {
				f.t.Errorf("empty swarm %q kept", h)
			}
			if len(sw.list) != len(sw.peers) {
				f.t.Errorf("swarm list %d vs map %d", len(sw.list), len(sw.peers))
			}
			s := 0
			for j, p := range sw.list {
				if p.idx != j || sw.peers[p.id] != p || p.swarm != sw || p.removed {
					f.t.Errorf("peer %q bookkeeping broken (idx %d at %d)", p.id, p.idx, j)
				}
				if p.seeder {
					s++
				}
				p.owner.mu.Lock()
				if !slices.Contains(p.owner.owned, p) {
					f.t.Errorf("peer %q not in its owner's list", p.id)
				}
				p.owner.mu.Unlock()
			}
			if s != sw.seeders {
				f.t.Errorf("swarm seeders %d, counted %d", sw.seeders, s)
			}
			peers += len(sw.list)
			seeds += s
		}
		if peers != sh.peers || seeds != sh.seeds {
			f.t.Errorf("shard counts peers %d/%d seeds %d/%d", sh.peers, peers, sh.seeds, seeds)
		}
		sh.mu.Unlock()
	}
	m.mu.Lock()
	if m.swarmCount != swarms {
		f.t.Errorf("swarmCount %d, swarms %d", m.swarmCount, swarms)
	}
	m.mu.Unlock()
}

func TestRegistryFanOut(t *testing.T) {
	tests := []struct {
		name   string
		others int
		want   int
		expect int
	}{
		{"alone", 0, 5, 0},
		{"fewer others than wanted", 2, 5, 2},
		{"more others than wanted", 9, 3, 3},
		{"want zero", 4, 0, 0},
		{"exactly", 4, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newReg(t, 100, 100, 100)
			conns := map[Endpoint]string{}
			for i := range tt.others {
				c := &conn{}
				conns[c] = fmt.Sprint(i)
				f.mustAnnounce(c, "room", fmt.Sprintf("peer%d", i), 0)
			}
			self := &conn{}
			seen := map[Endpoint]int{}
			for range 200 {
				dst := f.mustAnnounce(self, "room", "self", tt.want)
				if len(dst) != tt.expect {
					t.Fatalf("got %d endpoints, want %d", len(dst), tt.expect)
				}
				for i, e := range dst {
					if e == Endpoint(self) {
						t.Fatal("offer fanned out to the sender")
					}
					if _, ok := conns[e]; !ok {
						t.Fatal("endpoint is not a swarm member")
					}
					if slices.Contains(dst[:i], e) {
						t.Fatal("one peer picked twice in one announce")
					}
					seen[e]++
				}
			}
			if tt.expect > 0 && len(seen) != tt.others {
				t.Fatalf("random choice reached %d of %d peers in 200 announces", len(seen), tt.others)
			}
			f.check()
		})
	}
}

func TestRegistryAnswerRouting(t *testing.T) {
	f := newReg(t, 100, 100, 100)
	ca, cb, cc := &conn{}, &conn{}, &conn{}
	f.mustAnnounce(ca, "room1", "alice", 0)
	f.mustAnnounce(cc, "room2", "carol", 0)
	answer := func(c *conn, hash, from, to string) ([]Endpoint, error) {
		toID := rid(to)
		_, dst, err := f.m.Announce(c, &announceArgs{infoHash: rid(hash), peerID: rid(from), answerTo: &toID, now: 1}, nil)
		return dst, err
	}
	dst, err := answer(cb, "room1", "bob", "alice")
	if err != nil || len(dst) != 1 || dst[0] != Endpoint(ca) {
		t.Fatalf("answer to alice: %v %v", dst, err)
	}
	if got := f.m.Scrape([]ID{rid("room1")}, nil)[0]; got.Incomplete != 2 {
		t.Fatalf("answerer did not join the swarm: %+v", got)
	}
	if _, err := answer(cb, "room1", "bob", "carol"); !errors.Is(err, errUnknownPeer) {
		t.Fatalf("answer across swarms: %v, want errUnknownPeer", err)
	}
	if _, err := answer(cb, "room1", "bob", "nobody"); !errors.Is(err, errUnknownPeer) {
		t.Fatalf("answer to unknown peer: %v", err)
	}
	if _, err := answer(cb, "room1", "bob", "bob"); !errors.Is(err, errAnswerSelf) {
		t.Fatalf("answer to self: %v", err)
	}
	f.check()
}

func TestRegistryRebind(t *testing.T) {
	f := newReg(t, 100, 100, 100)
	old, newer, other := &conn{}, &conn{}, &conn{}
	f.mustAnnounce(old, "room", "p", 0)
	f.mustAnnounce(other, "room", "q", 0)
	f.mustAnnounce(newer, "room", "p", 0)
	if tot := f.m.Totals(); tot.Peers != 2 || tot.Swarms != 1 {
		t.Fatalf("totals %+v", tot)
	}
	dst := f.mustAnnounce(other, "room", "q", 5)
	if len(dst) != 1 || dst[0] != Endpoint(newer) {
		t.Fatalf("offers for p go to %v, want its newest connection", dst)
	}
	f.check()
	// The old connection no longer owns p: its stop and its close leave p alone.
	f.m.Leave(old, rid("room"), rid("p"))
	f.m.DropConn(old)
	if tot := f.m.Totals(); tot.Peers != 2 {
		t.Fatalf("old connection's close removed the rebound peer: %+v", tot)
	}
	f.check()
	f.m.Leave(newer, rid("room"), rid("p"))
	if tot := f.m.Totals(); tot.Peers != 1 {
		t.Fatalf("stop from the owner did not remove: %+v", tot)
	}
	f.m.DropConn(other)
	if tot := f.m.Totals(); tot != (Totals{}) {
		t.Fatalf("swarm not deleted: %+v", tot)
	}
	f.check()
}

func TestRegistryDropConn(t *testing.T) {
	f := newReg(t, 100, 100, 100)
	c, keep := &conn{}, &conn{}
	for i := range 5 {
		f.mustAnnounce(c, fmt.Sprintf("room%d", i), "p", 0)
		f.mustAnnounce(c, fmt.Sprintf("room%d", i), "p2", 0) // two peer_ids on one connection
	}
	f.mustAnnounce(keep, "room0", "k", 0)
	if tot := f.m.Totals(); tot.Swarms != 5 || tot.Peers != 11 {
		t.Fatalf("totals %+v", tot)
	}
	f.m.DropConn(c)
	if tot := f.m.Totals(); tot.Swarms != 1 || tot.Peers != 1 {
		t.Fatalf("after DropConn: %+v, want only keep's swarm", tot)
	}
	if len(c.owned) != 0 {
		t.Fatalf("conn still owns %d", len(c.owned))
	}
	f.m.DropConn(c) // twice is harmless
	f.check()
}

func TestRegistryCountsAndScrape(t *testing.T) {
	f := newReg(t, 100, 100, 100)
	c := &conn{}
	seed := func(peer string, seeder bool) Counts {
		counts, _, err := f.m.Announce(c, &announceArgs{infoHash: rid("room"), peerID: rid(peer), seeder: seeder, now: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	if got := seed("a", true); got != (Counts{1, 0}) {
		t.Fatalf("%+v", got)
	}
	if got := seed("b", false); got != (Counts{1, 1}) {
		t.Fatalf("%+v", got)
	}
	if got := seed("b", true); got != (Counts{2, 0}) {
		t.Fatalf("completed: %+v", got)
	}
	// As in the reference, a seeder stays one: trystero's updates carry no left.
	if got := seed("a", false); got != (Counts{2, 0}) {
		t.Fatalf("seeder must stay a seeder: %+v", got)
	}
	got := f.m.Scrape([]ID{rid("room"), rid("none")}, nil)
	if !slices.Equal(got, []Counts{{2, 0}, {0, 0}}) {
		t.Fatalf("scrape %+v", got)
	}
	if tot := f.m.Totals(); tot != (Totals{Swarms: 1, Peers: 2, Seeders: 2}) {
		t.Fatalf("totals %+v", tot)
	}
	if got := f.m.Leave(c, rid("room"), rid("b")); got != (Counts{1, 0}) {
		t.Fatalf("leave: %+v", got)
	}
	if got := f.m.Leave(c, rid("none"), rid("b")); got != (Counts{}) {
		t.Fatalf("leave unknown swarm: %+v", got)
	}
	f.check()
}

func TestRegistryExpire(t *testing.T) {
	f := newReg(t, 100, 100, 100)
	c := &conn{}
	if _, _, err := f.announce(c, "old", "p", 0, 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.announce(c, "mixed", "p", 0, 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.announce(c, "mixed", "q", 0, 200); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.announce(c, "fresh", "p", 0, 200); err != nil {
		t.Fatal(err)
	}
	if n := f.m.Expire(100); n != 0 {
		t.Fatalf("expired %d at the boundary", n)
	}
	if n := f.m.Expire(150); n != 2 {
		t.Fatalf("expired %d, want 2", n)
	}
	if tot := f.m.Totals(); tot.Swarms != 2 || tot.Peers != 2 {
		t.Fatalf("after expiry: %+v (empty swarm must go)", tot)
	}
	if len(c.owned) != 2 {
		t.Fatalf("conn still owns %d, want 2", len(c.owned))
	}
	f.check()
	// An announce refreshes.
	if _, _, err := f.announce(c, "mixed", "q", 0, 300); err != nil {
		t.Fatal(err)
	}
	if n := f.m.Expire(250); n != 1 {
		t.Fatalf("expired %d, want only fresh/p", n)
	}
	f.check()
}

func TestRegistryLimits(t *testing.T) {
	t.Run("peers per swarm", func(t *testing.T) {
		f := newReg(t, 2, 100, 100)
		f.mustAnnounce(&conn{}, "room", "a", 0)
		f.mustAnnounce(&conn{}, "room", "b", 0)
		if _, _, err := f.announce(&conn{}, "room", "c", 0, 1); !errors.Is(err, ErrSwarmFull) {
			t.Fatalf("third peer: %v, want ErrSwarmFull", err)
		}
		f.mustAnnounce(&conn{}, "room", "a", 0) // a member may still re-announce (and move)
		f.mustAnnounce(&conn{}, "other", "c", 0)
		f.check()
	})
	t.Run("swarms per connection", func(t *testing.T) {
		f := newReg(t, 100, 100, 2)
		c, c2 := &conn{}, &conn{}
		f.mustAnnounce(c, "r1", "p", 0)
		f.mustAnnounce(c, "r2", "p", 0)
		if _, _, err := f.announce(c, "r3", "p", 0, 1); !errors.Is(err, ErrTooManySwarms) {
			t.Fatalf("third swarm: %v", err)
		}
		if tot := f.m.Totals(); tot.Swarms != 2 {
			t.Fatalf("refused announce left a swarm behind: %+v", tot)
		}
		// Moving a peer onto a connection that is at its limit is refused; the old owner keeps it.
		f.mustAnnounce(c2, "r3", "x", 0)
		f.mustAnnounce(c2, "r4", "x", 0)
		if _, _, err := f.announce(c2, "r1", "p", 0, 1); !errors.Is(err, ErrTooManySwarms) {
			t.Fatalf("rebind over the limit: %v", err)
		}
		f.check()
		f.m.DropConn(c)
		if tot := f.m.Totals(); tot.Swarms != 2 {
			t.Fatalf("%+v", tot)
		}
		f.check()
	})
	t.Run("swarms total", func(t *testing.T) {
		f := newReg(t, 100, 2, 100)
		c := &conn{}
		f.mustAnnounce(c, "r1", "p", 0)
		f.mustAnnounce(c, "r2", "p", 0)
		if _, _, err := f.announce(c, "r3", "p", 0, 1); !errors.Is(err, ErrTrackerFull) {
			t.Fatalf("third swarm: %v", err)
		}
		f.mustAnnounce(&conn{}, "r1", "q", 0) // existing swarms still take peers
		f.m.Leave(c, rid("r2"), rid("p"))
		f.mustAnnounce(c, "r3", "p", 0) // a deleted swarm frees its slot
		f.check()
	})
}

func TestRegistryHashes(t *testing.T) {
	f := newReg(t, 100, 100, 100)
	c := &conn{}
	for i := range 10 {
		f.mustAnnounce(c, fmt.Sprintf("room%d", i), "p", 0)
	}
	if got := f.m.Hashes(nil, 100); len(got) != 10 {
		t.Fatalf("hashes %d", len(got))
	}
	if got := f.m.Hashes(nil, 4); len(got) != 4 {
		t.Fatalf("hashes limited to 4: %d", len(got))
	}
}

// TestRegistryConcurrent hammers one registry from many goroutines (run with -race) and then
// checks that every count and index still adds up.
func TestRegistryConcurrent(t *testing.T) {
	f := newReg(t, 8, 40, 6)
	conns := make([]*conn, 12)
	for i := range conns {
		conns[i] = &conn{}
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 2000 {
				c := conns[rng.IntN(len(conns))]
				hash := rid(fmt.Sprintf("room%d", rng.IntN(12)))
				peer := rid(fmt.Sprintf("peer%d", rng.IntN(20)))
				switch op := rng.IntN(10); {
				case op < 5:
					to := rid(fmt.Sprintf("peer%d", rng.IntN(20)))
					a := &announceArgs{infoHash: hash, peerID: peer, want: rng.IntN(4), seeder: rng.IntN(2) == 0, now: int64(i)}
					if op == 0 {
						a.answerTo = &to
					}
					_, dst, err := f.m.Announce(c, a, nil)
					if err == nil && a.answerTo == nil && len(dst) > a.want {
						t.Errorf("fan-out %d > want %d", len(dst), a.want)
					}
				case op < 7:
					f.m.Leave(c, hash, peer)
				case op < 8:
					f.m.DropConn(c)
				case op < 9:
					f.m.Scrape([]ID{hash}, nil)
					f.m.Totals()
				default:
					f.m.Expire(int64(i - 500))
				}
			}
		})
	}
	wg.Wait()
	f.check()
	for _, c := range conns {
		f.m.DropConn(c)
	}
	if tot := f.m.Totals(); tot != (Totals{}) {
		t.Fatalf("after dropping every connection: %+v", tot)
	}
	f.check()
}
