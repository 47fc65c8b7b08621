// Package differential replays scripted tracker sessions against the reference WebTorrent
// tracker (bittorrent-tracker 11.2.3, test/reference) and ours, and compares what every
// peer receives. Differences allowed, each for a documented reason:
//   - which peers get an offer when there are fewer offers than peers (random by
//     design): those steps pool the peers' messages;
//   - failure replies: only "a failure reply" compares; the reasons are worded
//     differently, and ours must always carry "action" (research/tracker.md §1.7);
//   - scrape "flags": the reference's min_request_interval is 5x its ws interval;
//   - a peer_id announced again from a new connection: the reference keeps routing to
//     the old one and drops the peer when the old one closes (§1.5); ours moves it.
//     TestReconnect asserts each side's behaviour instead of comparing.
package differential

import (
	"reflect"
	"strings"
	"testing"
)

var (
	s1 = "S1-swarm-ascii-00001"
	// s2 uses every awkward class of char a binary id carries: control, quote,
	// backslash, HTML-escaped by encoding/json, DEL, and U+0080-U+00FF (2 UTF-8 bytes).
	s2 = string([]rune{0x00, 0x01, 0x1f, '"', '\\', '<', '>', '&', 0x7f, 0x80, 0x81, 0x9f, 0xa0, 0xc0, 0xc3, 0xd7, 0xe9, 0xf7, 0xfe, 0xff})
	s3 = "S3-swarm-ascii-00003"

	idA = "-WW0001-peerAaaaaaaa"
	idB = string([]rune{0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xfc, 0xfd, 0xfe, 0xff})
	idC = "trysteroPeerCccccccc"
	idD = "-WW0001-peerDddddddd"
	idX = "-WW0001-peerXxxxxxxx"
)

func anyOf(peers ...string) string { return "any of " + strings.Join(peers, ",") }

func kinds(k ...string) []string { return k }

// script is the main scripted session: a swarm filling up, offers, answers, events,
// scrapes, a second (binary) swarm on the same connections, and connections closing.
func script(s *session) {
	for id, n := range map[string]string{s1: "S1", s2: "S2", s3: "S3", idA: "A", idB: "B", idC: "C", idD: "D", idX: "X"} {
		s.name(id, n)
	}
	for _, n := range []string{"A", "B", "C", "D"} {
		s.connect(n)
	}
	s.step("A starts S1 without offers", "A", func() {
		s.announce("A", idA, s1, ann{event: "started", left: 50, offers: -1})
	}, map[string][]string{"A": kinds("reply")})
	s.step("B starts S1 with 3 offers", "B", func() {
		s.announce("B", idB, s1, ann{event: "started", left: 50, offers: 3, numwant: 3})
	}, map[string][]string{"B": kinds("reply"), "A": kinds("offer")})
	s.step("C joins S1 trystero-style (no event, no left) with 3 offers", "C", func() {
		s.announce("C", idC, s1, ann{offers: 3, numwant: 3})
	}, map[string][]string{"C": kinds("reply"), "A": kinds("offer"), "B": kinds("offer")})
	s.step("A answers C's offer", "A", func() { s.answerLast("A", idA) },
		map[string][]string{"C": kinds("answer")})
	s.step("B answers a peer that is not in the swarm", "B", func() {
		s.peers["B"].send(map[string]any{"action": "announce", "info_hash": s1, "peer_id": idB,
			"to_peer_id": "nobody-nobody-nobody", "offer_id": "offer-that-never-was",
			"answer": map[string]any{"type": "answer", "sdp": "lost"}})
	}, nil)
	s.step("A completes (left 0)", "A", func() {
		s.announce("A", idA, s1, ann{event: "completed", left: 0, offers: 0, numwant: 0})
	}, map[string][]string{"A": kinds("reply")})
	s.step("D starts S1 with 1 offer: one random peer gets it", "D", func() {
		s.announce("D", idD, s1, ann{event: "started", left: 50, offers: 1})
	}, map[string][]string{"D": kinds("reply"), anyOf("A", "B", "C"): kinds("offer")}, "A", "B", "C")
	s.step("D scrapes S1", "D", func() {
		s.peers["D"].send(map[string]any{"action": "scrape", "info_hash": s1})
	}, map[string][]string{"D": kinds("scrape")})
	s.step("D scrapes a list: S1, S2 (empty yet), S3 (never used)", "D", func() {
		s.peers["D"].send(map[string]any{"action": "scrape", "info_hash": []string{s1, s2, s3}})
	}, map[string][]string{"D": kinds("scrape")})
	s.step("A starts the binary-id swarm S2", "A", func() {
		s.announce("A", idA, s2, ann{event: "started", left: 50, offers: 0})
	}, map[string][]string{"A": kinds("reply")})
	s.step("B (binary peer_id) offers into S2", "B", func() {
		s.announce("B", idB, s2, ann{event: "started", left: 50, offers: 2})
	}, map[string][]string{"B": kinds("reply"), "A": kinds("offer")})
	s.step("A answers B in S2", "A", func() { s.answerLast("A", idA) },
		map[string][]string{"B": kinds("answer")})
	s.step("C stops in S1", "C", func() {
		s.announce("C", idC, s1, ann{event: "stopped", left: 50, offers: -1})
	}, map[string][]string{"C": kinds("reply")})
	s.step("B offers 5 into S1: A and D get one each, C has left", "B", func() {
		s.announce("B", idB, s1, ann{event: "update", offers: 5})
	}, map[string][]string{"B": kinds("reply"), "A": kinds("offer"), "D": kinds("offer")})
	s.step("D answers B's offer naming S3, where B is not: nothing is delivered", "D", func() {
		o := s.lastOffer["D"]
		s.peers["D"].send(map[string]any{"action": "announce", "info_hash": s3, "peer_id": idD,
			"to_peer_id": o["peer_id"], "offer_id": o["offer_id"],
			"answer": map[string]any{"type": "answer", "sdp": "wrong swarm"}})
	}, nil)
	s.step("D scrapes S3: did the answer join D to it?", "D", func() {
		s.peers["D"].send(map[string]any{"action": "scrape", "info_hash": s3})
	}, map[string][]string{"D": kinds("scrape")})
	s.step("D pauses", "D", func() {
		s.announce("D", idD, s1, ann{event: "paused", left: 50, offers: 0})
	}, map[string][]string{"D": kinds("reply")})
	s.step("D completes after pausing", "D", func() {
		s.announce("D", idD, s1, ann{event: "completed", left: 0, offers: -1})
	}, map[string][]string{"D": kinds("reply")})

	s.closePeer("D")
	s.scrapeUntil("D closed: S1 keeps A and B, S3 is empty", "B", []string{s1, s3}, map[string][2]int{"S1": {1, 1}, "S3": {0, 0}})
	s.closePeer("A")
	s.scrapeUntil("A closed: gone from S1 and S2", "B", []string{s1, s2}, map[string][2]int{"S1": {0, 1}, "S2": {0, 1}})
}

// badInput is one invalid message, each sent on a fresh connection: every one must get
// a failure reply and leave the connection serving (the barrier after it proves that).
var badInput = []struct{ name, msg string }{
	{"not JSON", `{not json`},
	{"JSON array", `[1,2,3]`},
	{"unknown action", `{"action":"foo","info_hash":"S1-swarm-ascii-00001"}`},
	{"short info_hash", `{"action":"announce","info_hash":"short","peer_id":"-WW0001-peerXxxxxxxx","offers":[]}`},
	{"long peer_id", `{"action":"announce","info_hash":"S1-swarm-ascii-00001","peer_id":"-WW0001-peerXxxxxxxxx","offers":[]}`},
	{"numeric info_hash", `{"action":"announce","info_hash":12345678901234567890,"peer_id":"-WW0001-peerXxxxxxxx"}`},
	{"invalid event", `{"action":"announce","info_hash":"S1-swarm-ascii-00001","peer_id":"-WW0001-peerXxxxxxxx","event":"bogus","offers":[]}`},
	{"answer without to_peer_id", `{"action":"announce","info_hash":"S1-swarm-ascii-00001","peer_id":"-WW0001-peerXxxxxxxx","offer_id":"o","answer":{"type":"answer","sdp":"x"}}`},
	{"scrape with a short hash", `{"action":"scrape","info_hash":["S1-swarm-ascii-00001","short"]}`},
}

func badInputs(s *session) {
	s.name(s1, "S1")
	for _, b := range badInput {
		n := "X " + b.name
		s.connect(n)
		s.step(b.name, n, func() { s.peers[n].send(b.msg) }, map[string][]string{n: kinds("failure")})
		s.closePeer(n)
	}
}

func run(t *testing.T, tr tracker, f func(*session)) *session {
	s := newSession(t, tr)
	f(s)
	return s
}

// compare reports every peer whose record differs between the two trackers.
func compare(t *testing.T, ref, ours *session) {
	t.Helper()
	keys := map[string]bool{}
	for k := range ref.record {
		keys[k] = true
	}
	for k := range ours.record {
		keys[k] = true
	}
	for k := range keys {
		r, o := ref.record[k], ours.record[k]
		if pooled := strings.HasPrefix(k, "any of "); pooled {
			r, o = sorted(r), sorted(o)
		}
		if !reflect.DeepEqual(r, o) {
			t.Errorf("peer %s received differently:\nreference:\n  %s\nours:\n  %s", k, strings.Join(r, "\n  "), strings.Join(o, "\n  "))
		}
	}
	// Where the reference names the info_hash in a failure, ours must too.
	for i, ih := range ref.failIH {
		if ih != "" && (i >= len(ours.failIH) || ours.failIH[i] != ih) {
			t.Errorf("failure reply %d (%s): the reference names info_hash %s, ours does not", i, ref.reasons[i], ih)
		}
	}
	if !reflect.DeepEqual(ref.reasons, ours.reasons) {
		t.Logf("failure reasons (not compared):\nreference: %q\nours:      %q", ref.reasons, ours.reasons)
	}
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c { // strip the step label: pooled steps compare as a multiset
		c[i] = c[i][strings.Index(c[i], ": ")+2:]
	}
	return slicesSorted(c)
}

func TestDifferential(t *testing.T) {
	for _, sc := range []struct {
		name string
		f    func(*session)
	}{{"session", script}, {"bad input", badInputs}} {
		t.Run(sc.name, func(t *testing.T) {
			ref := run(t, startReference(t), sc.f)
			if t.Failed() {
				return
			}
			ours := run(t, startOurs(t), sc.f)
			dumpRecord(t, ref)
			dumpRecord(t, ours)
			compare(t, ref, ours)
		})
	}
}

// TestReconnect replays the reference's verified reconnect bug (§1.5): peer P announces
// from connection X, then from Y. The reference still sends P's offers to X and, when X
// closes, drops P although Y is alive; ours sends them to Y and keeps P.
func TestReconnect(t *testing.T) {
	for _, start := range []func(*testing.T) tracker{startReference, startOurs} {
		tr := start(t)
		t.Run(tr.name, func(t *testing.T) {
			s := newSession(t, tr)
			s.name(s3, "S3")
			for _, n := range []string{"X", "Y", "Q"} {
				s.connect(n)
			}
			s.step("P announces from X", "X", func() { s.announce("X", idX, s3, ann{event: "started", left: 50, offers: 0}) },
				map[string][]string{"X": kinds("reply")})
			s.step("P announces again from Y", "Y", func() { s.announce("Y", idX, s3, ann{event: "started", left: 50, offers: 0}) },
				map[string][]string{"Y": kinds("reply")})
			to := "Y"
			if !tr.ours {
				to = "X" // the bug: the peer stays bound to its first connection
			}
			s.step("Q offers to P", "Q", func() { s.announce("Q", idA, s3, ann{event: "started", left: 50, offers: 1}) },
				map[string][]string{"Q": kinds("reply"), to: kinds("offer")})
			s.closePeer("X")
			want := map[string][2]int{"S3": {0, 2}}
			if !tr.ours {
				want = map[string][2]int{"S3": {0, 1}} // the bug: X's close removed P
			}
			s.scrapeUntil("X closed", "Q", s3, want)
			if tr.ours {
				s.step("Q offers to P again: Y still gets it", "Q", func() { s.announce("Q", idA, s3, ann{offers: 1}) },
					map[string][]string{"Q": kinds("reply"), "Y": kinds("offer")})
			}
		})
	}
}
