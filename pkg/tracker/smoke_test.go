package tracker

import "testing"

func TestSmokeOfferAnswer(t *testing.T) {
	s := startServer(t, nil)
	a, b := dial(t, s.url), dial(t, s.url)
	room := id20("room")
	a.send(map[string]any{"action": "announce", "info_hash": room, "peer_id": id20("alice"), "numwant": 3, "offers": []any{}})
	t.Logf("a got %v", a.recv())
	b.send(map[string]any{"action": "announce", "info_hash": room, "peer_id": id20("bob"), "numwant": 1,
		"offers": []any{map[string]any{"offer_id": id20("o1"), "offer": map[string]any{"type": "offer", "sdp": "x"}}}})
	t.Logf("b got %v", b.recv())
	off := a.recv()
	t.Logf("a got %v", off)
	a.send(map[string]any{"action": "announce", "info_hash": room, "peer_id": id20("alice"), "to_peer_id": id20("bob"),
		"offer_id": id20("o1"), "answer": map[string]any{"type": "answer", "sdp": "y"}})
	t.Logf("b got %v", b.recv())
}
