package differential

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// barrierHash is scraped by every peer after every step. A tracker handles one
// connection's messages in order and queues each connection's output in order, so once
// the acting peer has its barrier reply the step is fully handled, and once any other
// peer has its own, everything the step sent that peer has arrived before it.
const barrierHash = "~barrier~~barrier~~~"

// session replays one script against one tracker and records, per peer and step, what
// the peer received, normalized so two trackers' records compare.
type session struct {
	t     *testing.T
	tr    tracker
	peers map[string]*peer
	order []string
	names map[string]string // ids (peer_id, info_hash) -> the script's names for them

	offers    map[string]sentOffer // offer_id -> who offered what
	answers   map[string]any       // offer_id -> the answer object sent for it
	delivered map[string]bool      // offer_ids delivered, to catch duplicates
	lastOffer map[string]map[string]any
	seq       int

	record  map[string][]string // peer (or "any of X,Y") -> "step: normalized message"
	reasons []string            // failure reasons, compared only loosely
	failIH  []string            // per failure reply: the info_hash it names, or ""
}

type sentOffer struct {
	from  string
	offer any
}

func newSession(t *testing.T, tr tracker) *session {
	return &session{
		t: t, tr: tr, peers: map[string]*peer{}, names: map[string]string{barrierHash: "BARRIER"},
		offers: map[string]sentOffer{}, answers: map[string]any{}, delivered: map[string]bool{},
		lastOffer: map[string]map[string]any{}, record: map[string][]string{},
	}
}

func (s *session) name(id, label string) { s.names[id] = label }

// connect opens a connection for the named peer (its peer_id registered with name()).
func (s *session) connect(name string) *peer {
	p := dialPeer(s.t, s.tr.url, name)
	s.peers[name] = p
	s.order = append(s.order, name)
	return p
}

type ann struct {
	event   string // "" leaves it out (trystero sends none)
	left    any    // nil leaves it out
	offers  int    // -1 leaves "offers" out
	numwant any
}

// announce sends an announce for peer name, with its peer_id, into infoHash.
func (s *session) announce(name, peerID, infoHash string, a ann) {
	m := map[string]any{"action": "announce", "info_hash": infoHash, "peer_id": peerID}
	if a.event != "" {
		m["event"] = a.event
	}
	if a.left != nil {
		m["left"] = a.left
	}
	if a.numwant != nil {
		m["numwant"] = a.numwant
	}
	if a.offers >= 0 {
		offers := []any{}
		for range a.offers {
			s.seq++
			id := fmt.Sprintf("%-20s", fmt.Sprintf("%s-offer-%d", name, s.seq))
			offer := map[string]any{"type": "offer", "sdp": fmt.Sprintf("v=0 offer %d from %s", s.seq, name)}
			s.offers[id] = sentOffer{from: name, offer: offer}
			offers = append(offers, map[string]any{"offer_id": id, "offer": offer})
		}
		m["offers"] = offers
	}
	s.peers[name].send(m)
}

// answerLast answers the last offer peer name received, as a browser would.
func (s *session) answerLast(name, peerID string) {
	o := s.lastOffer[name]
	if o == nil {
		s.t.Fatalf("%s %s: %s has received no offer to answer", s.tr.name, s.t.Name(), name)
	}
	s.seq++
	ans := map[string]any{"type": "answer", "sdp": fmt.Sprintf("v=0 answer %d from %s", s.seq, name)}
	s.answers[o["offer_id"].(string)] = ans
	s.peers[name].send(map[string]any{
		"action": "announce", "info_hash": o["info_hash"], "peer_id": peerID,
		"to_peer_id": o["peer_id"], "offer_id": o["offer_id"], "answer": ans,
	})
}

// step runs act as peer actor, waits until every peer has what want names for it, then
// sends a barrier through every open peer (the actor first) to catch anything more,
// records what each received and checks its kinds against want. Peers listed in group
// receive at random (fewer offers than peers): their messages are pooled.
//
// Waiting for the wanted messages first matters for the reference: it answers an
// announce after an asynchronous step, so a later scrape's reply can overtake it.
func (s *session) step(label, actor string, act func(), want map[string][]string, group ...string) {
	s.t.Helper()
	act()
	got := map[string][]message{}
	s.collect(got, want, group)
	order := append([]string{actor}, s.order...)
	seen := map[string]bool{}
	for _, n := range order {
		p := s.peers[n]
		if seen[n] || p == nil {
			continue
		}
		seen[n] = true
		p.send(map[string]any{"action": "scrape", "info_hash": barrierHash})
		before, _ := p.until("barrier scrape reply", isBarrierReply)
		got[n] = append(got[n], before...)
	}
	kinds := map[string][]string{}
	for _, n := range s.order {
		if s.peers[n] == nil {
			continue
		}
		key := n
		if slices.Contains(group, n) {
			key = "any of " + strings.Join(group, ",")
		}
		for _, m := range got[n] {
			if m.v != nil && m.v["offer"] != nil {
				s.lastOffer[n] = m.v
			}
			s.record[key] = append(s.record[key], label+": "+s.normalize(n, m))
			kinds[key] = append(kinds[key], kindOf(m))
		}
	}
	for k := range kinds {
		slices.Sort(kinds[k])
	}
	wantKinds := map[string][]string{}
	for k, v := range want {
		if len(v) > 0 {
			wantKinds[k] = slices.Sorted(slices.Values(v))
		}
	}
	if !reflect.DeepEqual(kinds, wantKinds) {
		s.t.Errorf("%s, step %q: peers received %v, want %v", s.tr.name, label, kinds, wantKinds)
	}
}

// collect drains the peers' inboxes into got until each key of want (a peer, or the
// group's pooled key) holds as many messages as want lists, or waitFor passes.
func (s *session) collect(got map[string][]message, want map[string][]string, group []string) {
	deadline := time.Now().Add(waitFor)
	for {
		for _, n := range s.order {
			p := s.peers[n]
			for p != nil {
				select {
				case m := <-p.inbox:
					got[n] = append(got[n], m)
					continue
				default:
				}
				break
			}
		}
		done := true
		for k, v := range want {
			have := len(got[k])
			if strings.HasPrefix(k, "any of ") {
				have = 0
				for _, n := range group {
					have += len(got[n])
				}
			}
			if have < len(v) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling a condition under a deadline
	}
}

// closePeer closes a connection; the tracker must forget what it owned.
func (s *session) closePeer(name string) {
	s.peers[name].close()
	s.peers[name] = nil
}

// scrapeUntil has peer name scrape hashes until the reply's counts equal want (the
// tracker handles a close asynchronously), and records the final reply.
func (s *session) scrapeUntil(label, name string, hashes any, want map[string][2]int) {
	s.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		p := s.peers[name]
		p.send(map[string]any{"action": "scrape", "info_hash": hashes})
		_, m := p.until("scrape reply", func(m message) bool { return m.v != nil && m.v["files"] != nil })
		got := map[string][2]int{}
		files, _ := m.v["files"].(map[string]any)
		for h, f := range files {
			fm, _ := f.(map[string]any)
			c, _ := fm["complete"].(float64)
			i, _ := fm["incomplete"].(float64)
			got[s.label(h)] = [2]int{int(c), int(i)}
		}
		if reflect.DeepEqual(got, want) || time.Now().After(deadline) {
			if !reflect.DeepEqual(got, want) {
				s.t.Errorf("%s, %q: scrape says %v, want %v", s.tr.name, label, got, want)
			}
			s.record[name] = append(s.record[name], label+": "+s.normalize(name, m))
			return
		}
		time.Sleep(20 * time.Millisecond) // polling a condition under a deadline
	}
}

func isBarrierReply(m message) bool {
	files, _ := m.v["files"].(map[string]any)
	_, ok := files[barrierHash]
	return ok && len(files) == 1
}

func kindOf(m message) string {
	switch v := m.v; {
	case v == nil:
		return "non-json"
	case v["failure reason"] != nil:
		return "failure"
	case v["offer"] != nil:
		return "offer"
	case v["answer"] != nil:
		return "answer"
	case v["files"] != nil:
		return "scrape"
	case v["interval"] != nil:
		return "reply"
	}
	return "other"
}

func (s *session) label(id string) string {
	if n, ok := s.names[id]; ok {
		return n
	}
	return fmt.Sprintf("?%q", id)
}

// normalize rewrites a received message so the two trackers' versions compare: ids
// become the script's names, offers and answers are checked against what was sent and
// replaced by who sent them, and what the trackers may legitimately differ in goes.
func (s *session) normalize(to string, m message) string {
	if m.v == nil {
		return "non-JSON " + string(m.raw)
	}
	v := map[string]any{}
	for k, x := range m.v {
		v[k] = x
	}
	if r, ok := v["failure reason"]; ok {
		// Reasons are worded differently; ours always names the action (and the
		// info_hash when it is known), the reference's parse errors do not (§1.7).
		if s.tr.ours && v["action"] == nil {
			s.t.Errorf("ours: failure reply to %s without \"action\": %s", to, m.raw)
		}
		s.reasons = append(s.reasons, fmt.Sprintf("%s: %v", to, r))
		ih := ""
		if id, ok := v["info_hash"].(string); ok {
			ih = s.label(id)
		}
		s.failIH = append(s.failIH, ih)
		return "failure"
	}
	for _, k := range []string{"peer_id", "info_hash", "to_peer_id"} {
		if id, ok := v[k].(string); ok {
			v[k] = s.label(id)
		}
	}
	if off, ok := v["offer"]; ok {
		id, _ := v["offer_id"].(string)
		sent, known := s.offers[id]
		switch {
		case !known:
			s.t.Errorf("%s: %s got an offer with an offer_id nobody sent: %s", s.tr.name, to, m.raw)
		case !reflect.DeepEqual(off, sent.offer):
			s.t.Errorf("%s: %s got offer %s altered: %v, sent %v", s.tr.name, to, id, off, sent.offer)
		case s.delivered[id]:
			s.t.Errorf("%s: offer %s delivered twice (again to %s)", s.tr.name, id, to)
		}
		s.delivered[id] = true
		v["offer"], v["offer_id"] = "offer of "+sent.from, "offer_id of "+sent.from
	}
	if ans, ok := v["answer"]; ok {
		id, _ := v["offer_id"].(string)
		if sent := s.answers[id]; !reflect.DeepEqual(ans, sent) {
			s.t.Errorf("%s: %s got answer for %s altered: %v, sent %v", s.tr.name, to, id, ans, sent)
		}
		v["answer"], v["offer_id"] = "answer", "offer_id of "+s.offers[id].from
	}
	if files, ok := v["files"].(map[string]any); ok {
		named := map[string]any{}
		for h, f := range files {
			named[s.label(h)] = f
		}
		v["files"] = named
		// The reference's min_request_interval is 5x its ws interval; ours sends the interval.
		delete(v, "flags")
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}
