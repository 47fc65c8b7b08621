package tracker

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func offerList(prefix string, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"offer_id": id20(fmt.Sprintf("%s%d", prefix, i)), "offer": map[string]any{"type": "offer", "sdp": fmt.Sprintf("%s-sdp-%d", prefix, i)}}
	}
	return out
}

// collect reads at most one message from each client within d, concurrently.
func collect(clients []*client, d time.Duration) []map[string]any {
	got := make([]map[string]any, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			if m, ok := c.tryRecv(d); ok {
				got[i] = m
			}
		})
	}
	wg.Wait()
	return got
}

func TestFanOutOverWebSocket(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	room, elsewhere := binHash, id20("elsewhere")
	var others []*client
	for i := range 4 {
		c := dial(t, s.url)
		c.join(room, id20(fmt.Sprintf("peer%d", i)), map[string]any{"offers": []any{}})
		others = append(others, c)
	}
	outsider := dial(t, s.url)
	outsider.join(elsewhere, id20("outsider"), nil)
	sender := dial(t, s.url)

	tests := []struct {
		name    string
		offers  int
		numwant any
		want    int
	}{
		{"offers fewer than others", 3, nil, 3},
		{"numwant caps offers", 3, 2, 2},
		{"more offers than others", 10, 50, 4},
		{"numwant zero", 3, 0, 0},
		{"no offers", 0, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender.t, outsider.t = t, t
			for _, c := range others {
				c.t = t
			}
			offers := offerList(strings.ReplaceAll(tt.name, " ", "")[:4], tt.offers)
			sender.announce(room, binPeer, map[string]any{"offers": offers, "numwant": tt.numwant})
			reply := sender.recv()
			if reply["action"] != "announce" || reply["info_hash"] != room || reply["incomplete"] != float64(5) || reply["interval"] != float64(20) {
				t.Fatalf("reply %v", reply)
			}
			got := collect(others, 300*time.Millisecond)
			var ids []string
			for _, m := range got {
				if m == nil {
					continue
				}
				if m["action"] != "announce" || m["peer_id"] != binPeer || m["info_hash"] != room || m["offer"] == nil {
					t.Fatalf("forwarded offer %v", m)
				}
				id := m["offer_id"].(string)
				i := slices.IndexFunc(offers, func(o any) bool { return o.(map[string]any)["offer_id"] == id })
				if i < 0 || fmt.Sprint(m["offer"]) != fmt.Sprint(offers[i].(map[string]any)["offer"]) {
					t.Fatalf("offer %q not one we sent, or changed: %v", id, m["offer"])
				}
				ids = append(ids, id)
			}
			if len(ids) != tt.want {
				t.Fatalf("%d peers got an offer, want %d", len(ids), tt.want)
			}
			slices.Sort(ids)
			if len(slices.Compact(ids)) != tt.want {
				t.Fatalf("one offer went to two peers: %v", ids)
			}
			sender.expectNothing(50 * time.Millisecond) // never to the sender
			outsider.expectNothing(10 * time.Millisecond)
		})
	}

	// Over many single-offer announces every other peer is chosen at some point.
	reached := map[int]bool{}
	for round := 0; round < 60 && len(reached) < len(others); round++ {
		sender.t = t
		sender.announce(room, binPeer, map[string]any{"offers": offerList("r", 1)})
		sender.recv()
		for i, m := range collect(others, 100*time.Millisecond) {
			if m != nil {
				reached[i] = true
			}
		}
	}
	if len(reached) != len(others) {
		t.Fatalf("random choice reached only %d of %d peers", len(reached), len(others))
	}
	if got := s.counter(t, "switchboard_tracker_offers_forwarded_total", ""); got < 9 {
		t.Fatalf("offers_forwarded_total %v", got)
	}
}

func TestAnswerRoutedInSameSwarmOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	room1, room2 := id20("room1"), id20("room2")
	alice, bob, carol := dial(t, s.url), dial(t, s.url), dial(t, s.url)
	alice.join(room1, binPeer, nil)
	carol.join(room2, id20("carol"), nil)
	bob.join(room1, id20("bob"), nil)

	answer := map[string]any{"type": "answer", "sdp": "encrypted$stuff"}
	bob.announce(room1, id20("bob"), map[string]any{"answer": answer, "offer_id": id20("o1"), "to_peer_id": binPeer})
	m := alice.recv()
	if m["action"] != "announce" || fmt.Sprint(m["answer"]) != fmt.Sprint(answer) || m["offer_id"] != id20("o1") ||
		m["peer_id"] != id20("bob") || m["info_hash"] != room1 {
		t.Fatalf("routed answer %v", m)
	}
	bob.expectNothing(50 * time.Millisecond) // answers get no reply

	// carol is in room2: an answer to alice naming room2 must not reach her.
	before := s.refused(t, refusedUnknownPeer)
	carol.announce(room2, id20("carol"), map[string]any{"answer": answer, "offer_id": id20("o2"), "to_peer_id": binPeer})
	alice.expectNothing(200 * time.Millisecond)
	carol.expectNothing(10 * time.Millisecond)
	if got := s.refused(t, refusedUnknownPeer); got != before+1 {
		t.Fatalf("answer_unknown_peer %v, want %v", got, before+1)
	}
	if got := s.counter(t, "switchboard_tracker_answers_forwarded_total", ""); got != 1 {
		t.Fatalf("answers_forwarded_total %v", got)
	}
	carol.served()
}

func TestScrapeOverWebSocket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fullScrape bool
	}{{"full scrape off", false}, {"full scrape on", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, func(c *Config) { c.FullScrape = tt.fullScrape })
			a, b, q := dial(t, s.url), dial(t, s.url), dial(t, s.url)
			a.join(binHash, id20("a"), map[string]any{"left": 0})
			b.join(binHash, id20("b"), nil)
			a.join(id20("two"), id20("a"), nil)

			q.send(map[string]any{"action": "scrape", "info_hash": binHash})
			r := q.recv()
			if fmt.Sprint(r["files"]) != fmt.Sprint(map[string]any{binHash: map[string]any{"complete": 1.0, "incomplete": 1.0, "downloaded": 1.0}}) ||
				r["action"] != "scrape" || fmt.Sprint(r["flags"]) != "map[min_request_interval:20]" {
				t.Fatalf("scrape one: %v", r)
			}
			q.send(map[string]any{"action": "scrape", "info_hash": []string{binHash, id20("two"), id20("none")}})
			files := q.recv()["files"].(map[string]any)
			if len(files) != 3 || fmt.Sprint(files[id20("two")]) != "map[complete:0 downloaded:0 incomplete:1]" ||
				fmt.Sprint(files[id20("none")]) != "map[complete:0 downloaded:0 incomplete:0]" {
				t.Fatalf("scrape list: %v", files)
			}
			q.send(map[string]any{"action": "scrape", "info_hash": []string{}})
			if files := q.recv()["files"].(map[string]any); len(files) != 0 {
				t.Fatalf("scrape empty list: %v", files)
			}
			q.send(map[string]any{"action": "scrape"})
			r = q.recv()
			if tt.fullScrape {
				files := r["files"].(map[string]any)
				if len(files) != 2 || files[binHash] == nil || files[id20("two")] == nil {
					t.Fatalf("full scrape: %v", r)
				}
				return
			}
			if r["action"] != "scrape" || r["failure reason"] != reasonFullScrape {
				t.Fatalf("full scrape while disabled: %v", r)
			}
			if got := s.refused(t, refusedFullScrape); got != 1 {
				t.Fatalf("refused full_scrape_disabled = %v", got)
			}
		})
	}
}

func TestEventsAndCounts(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *Config) { c.AnnounceInterval = 7 * time.Second; c.PeerTimeout = time.Minute })
	a, b := dial(t, s.url), dial(t, s.url)
	room := id20("events")
	b.join(room, id20("b"), map[string]any{"left": 10}) // one leecher beside
	steps := []struct {
		name                 string
		extra                map[string]any
		complete, incomplete float64
	}{
		{"started leecher", map[string]any{"event": "started", "left": 100}, 0, 2},
		{"started again is an update", map[string]any{"event": "started", "left": 50}, 0, 2},
		{"update", map[string]any{"event": "update", "left": 10}, 0, 2},
		{"completed makes a seeder", map[string]any{"event": "completed", "left": 0}, 1, 1},
		{"paused keeps it", map[string]any{"event": "paused", "left": 0}, 1, 1},
		{"absent event, left null is a seeder", map[string]any{"left": "null-placeholder"}, 1, 1},
		{"a seeder stays one without left (as the reference)", nil, 1, 1},
		{"trystero passive left 0", map[string]any{"left": 0, "numwant": 3, "offers": []any{}}, 1, 1},
		{"stopped removes", map[string]any{"event": "stopped"}, 0, 1},
		{"update after stop rejoins", map[string]any{"event": "update"}, 0, 2},
	}
	for _, st := range steps {
		if st.extra["left"] == "null-placeholder" {
			a.sendRaw(`{"action":"announce","info_hash":"` + room + `","peer_id":"` + id20("a") + `","left":null}`)
		} else {
			a.announce(room, id20("a"), st.extra)
		}
		r := a.recv()
		if r["action"] != "announce" || r["info_hash"] != room || r["interval"] != 7.0 ||
			r["complete"] != st.complete || r["incomplete"] != st.incomplete {
			t.Fatalf("%s: reply %v, want complete %v incomplete %v", st.name, r, st.complete, st.incomplete)
		}
	}
	a.announce(room, id20("a"), map[string]any{"event": "bogus"})
	if r := a.recv(); r["failure reason"] != reasonInvalidEvent || r["action"] != "announce" || r["info_hash"] != room {
		t.Fatalf("bad event: %v", r)
	}
	// The last peers stopping delete the swarm.
	a.announce(room, id20("a"), map[string]any{"event": "stopped"})
	a.recv()
	b.announce(room, id20("b"), map[string]any{"event": "stopped"})
	if r := b.recv(); r["complete"] != 0.0 || r["incomplete"] != 0.0 {
		t.Fatalf("last stop: %v", r)
	}
	if tot := s.Totals(); tot != (Totals{}) {
		t.Fatalf("empty swarm kept: %+v", tot)
	}
}

func TestPeerMovesToNewestConnection(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	room, p := id20("rebind"), id20("trystero-self")
	old, newer, q := dial(t, s.url), dial(t, s.url), dial(t, s.url)
	old.join(room, p, nil)
	newer.join(room, p, nil) // trystero reuses selfId on reconnect
	q.join(room, id20("q"), nil)
	if tot := s.Totals(); tot.Peers != 2 {
		t.Fatalf("totals %+v", tot)
	}
	offerTo := func() {
		t.Helper()
		q.announce(room, id20("q"), map[string]any{"offers": offerList("m", 1)})
		q.recv()
		if m := newer.recv(); m["offer"] == nil || m["peer_id"] != id20("q") {
			t.Fatalf("newest connection got %v", m)
		}
		old.expectNothing(100 * time.Millisecond)
	}
	offerTo()
	_ = old.nc.Close()
	waitFor(t, "old connection released", func() bool { return s.Connections() == 2 })
	if tot := s.Totals(); tot.Peers != 2 {
		t.Fatalf("old connection's close removed the moved peer: %+v", tot)
	}
	offerTo()
	// newer answers back and q receives it: routing follows the move too.
	newer.announce(room, p, map[string]any{"answer": map[string]any{"sdp": "a"}, "offer_id": id20("m0"), "to_peer_id": id20("q")})
	if m := q.recv(); m["answer"] == nil || m["peer_id"] != p {
		t.Fatalf("answer %v", m)
	}
}

func TestClosedConnectionRemovesEverything(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	c, stay := dial(t, s.url), dial(t, s.url)
	for i := range 3 {
		c.join(id20(fmt.Sprintf("room%d", i)), id20("one"), nil)
		c.join(id20(fmt.Sprintf("room%d", i)), id20("two"), nil) // a second peer_id on one socket
	}
	stay.join(id20("room0"), id20("stay"), nil)
	if tot := s.Totals(); tot.Swarms != 3 || tot.Peers != 7 {
		t.Fatalf("totals %+v", tot)
	}
	_ = c.nc.Close()
	waitFor(t, "everything the closed connection owned removed", func() bool {
		return s.Totals() == Totals{Swarms: 1, Peers: 1}
	})
	stay.served()
	if got := s.counter(t, "switchboard_tracker_swarms", ""); got != 1 {
		t.Fatalf("swarms gauge %v", got)
	}
}

func TestStalePeersExpire(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *Config) {
		c.AnnounceInterval, c.PeerTimeout = time.Second, 2*time.Second
		c.PingInterval, c.IdleTimeout = time.Second, time.Hour
	})
	c, fresh := dial(t, s.url), dial(t, s.url)
	c.join(id20("stale"), id20("p"), nil)
	c.join(id20("shared"), id20("p"), nil)
	// fresh keeps announcing, so only c's memberships go stale.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			fresh.announce(id20("shared"), id20("f"), nil)
			if _, ok := fresh.tryRecv(2 * time.Second); !ok {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	waitForD(t, 10*time.Second, "stale peers expired", func() bool { return s.Totals() == Totals{Swarms: 1, Peers: 1} })
	close(stop)
	<-done
	if got := s.counter(t, "switchboard_tracker_peers_expired_total", ""); got != 2 {
		t.Fatalf("peers_expired_total %v", got)
	}
	// The connection itself stays and can announce again.
	if r := c.join(id20("stale"), id20("p"), nil); r["incomplete"] != 1.0 {
		t.Fatalf("rejoin %v", r)
	}
}

func TestFailureRepliesCarryAction(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	bad, other := dial(t, s.url), dial(t, s.url)
	room := id20("room")
	tests := []struct {
		name     string
		msg      string
		action   string
		infoHash string
		reason   string
	}{
		{"invalid JSON", `{"action":"announce",`, "announce", "", reasonInvalidJSON},
		{"garbage", `hello`, "announce", "", reasonInvalidJSON},
		{"array", `["announce"]`, "announce", "", reasonNotObject},
		{"string", `"announce"`, "announce", "", reasonNotObject},
		{"number", `42`, "announce", "", reasonNotObject},
		{"null", `null`, "announce", "", reasonNotObject},
		{"unknown action", js(map[string]any{"action": "connect", "info_hash": room}), "announce", room, reasonInvalidAction},
		{"no action", js(map[string]any{"info_hash": room}), "announce", room, reasonInvalidAction},
		{"short info_hash", js(map[string]any{"action": "announce", "info_hash": "short", "peer_id": id20("p")}), "announce", "", reasonInvalidInfoHash},
		{"long info_hash", js(map[string]any{"action": "announce", "info_hash": room + "x", "peer_id": id20("p")}), "announce", "", reasonInvalidInfoHash},
		{"info_hash over U+00FF", js(map[string]any{"action": "announce", "info_hash": "Ā" + room[1:], "peer_id": id20("p")}), "announce", "", reasonInvalidInfoHash},
		{"peer_id over U+00FF", js(map[string]any{"action": "announce", "info_hash": room, "peer_id": strings.Repeat("😀", 20)}), "announce", room, reasonInvalidPeerID},
		{"wrong length peer_id", js(map[string]any{"action": "announce", "info_hash": room, "peer_id": "p"}), "announce", room, reasonInvalidPeerID},
		{"answer without to_peer_id", js(map[string]any{"action": "announce", "info_hash": room, "peer_id": id20("p"), "answer": map[string]any{}, "offer_id": "o"}), "announce", room, reasonInvalidToPeerID},
		{"bad offers", js(map[string]any{"action": "announce", "info_hash": room, "peer_id": id20("p"), "offers": []any{"x"}}), "announce", room, reasonInvalidOffers},
		{"bad event", js(map[string]any{"action": "announce", "info_hash": room, "peer_id": id20("p"), "event": "x"}), "announce", room, reasonInvalidEvent},
		{"scrape bad hash", js(map[string]any{"action": "scrape", "info_hash": []string{"short"}}), "scrape", "", reasonInvalidInfoHash},
		{"scrape bad single hash", js(map[string]any{"action": "scrape", "info_hash": "short"}), "scrape", "", reasonInvalidInfoHash},
		{"trailing data", `{"action":"scrape","info_hash":"` + room + `"} {}`, "scrape", room, reasonInvalidJSON},
		{"deep nesting", `{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, "announce", "", reasonInvalidJSON},
	}
	before := s.refused(t, refusedInvalid)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad.t = t
			bad.sendRaw(tt.msg)
			r := bad.recv()
			if r["action"] != tt.action || r["failure reason"] != tt.reason {
				t.Fatalf("reply %v, want action %q reason %q", r, tt.action, tt.reason)
			}
			if tt.infoHash == "" && r["info_hash"] != nil || tt.infoHash != "" && r["info_hash"] != tt.infoHash {
				t.Fatalf("info_hash %v, want %q", r["info_hash"], tt.infoHash)
			}
		})
	}
	bad.t = t
	if got := s.refused(t, refusedInvalid); got != before+float64(len(tests)) {
		t.Fatalf("refused invalid_message %v, want %v", got, before+float64(len(tests)))
	}
	bad.served() // bad input does not cost the sender its connection
	other.served()
}

func TestServerPingsAndClosesIdle(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "wss"}[secure], func(t *testing.T) {
			t.Parallel()
			testPingsAndIdle(t, secure)
		})
	}
}

func testPingsAndIdle(t *testing.T, secure bool) {
	mutate := func(c *Config) { c.PingInterval, c.IdleTimeout = time.Second, 2*time.Second }
	var s *testServer
	dialAny := func() *client { return dial(t, s.url) }
	if secure {
		srvConf, cliConf := selfSigned(t)
		s = startServerTLS(t, mutate, srvConf)
		dialAny = func() *client { return dialTLS(t, s.url, cliConf) }
	} else {
		s = startServer(t, mutate)
	}
	silent := dialAny() // never reads, so never answers pings
	alive := dialAny()
	alive.join(id20("room"), id20("alive"), nil)
	silent.join(id20("room"), id20("silent"), nil)
	pings := 0
	deadline := time.Now().Add(8 * time.Second)
	for s.refused(t, refusedIdle) < 1 || pings == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pings seen %d, idle closes %v", pings, s.refused(t, refusedIdle))
		}
		// Read frames ourselves to see the ping, and answer it as a browser would.
		if op, payload := alive.readFrame(200 * time.Millisecond); op == opPing {
			pings++
			alive.writeFrame(opPong, payload)
		}
	}
	waitFor(t, "silent connection closed", func() bool { return s.Connections() == 1 })
	if tot := s.Totals(); tot.Peers != 1 {
		t.Fatalf("idle connection's peer not removed: %+v", tot)
	}
	if code := silent.expectClose(); code != 0 {
		t.Logf("silent client saw close code %d", code)
	}
	alive.served()
}
