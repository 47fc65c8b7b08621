package tracker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// Ids used across the codec tests: trystero's ASCII shape and WebTorrent's binary shape.
var (
	tryHash = "6z53337305w6o375dh6w"
	tryPeer = "Ab3dEf7hIj9lMn1pQr5t"
	binHash = latin1([]byte{0x00, 0x01, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0x9f, 0xa0, 0xc3, 0xe9, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xfe})
	binPeer = latin1([]byte("-WW0208-\x00\xff\x80abcdefghi"))
)

func mustID(t testing.TB, s string) ID {
	t.Helper()
	id, ok := decodeID([]byte(s))
	if !ok {
		t.Fatalf("test id %q is not a valid id", s)
	}
	return id
}

// js builds a JSON message the way a client would (encoding/json, so binary ids go as UTF-8).
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func offersN(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"offer_id": fmt.Sprintf("offer%015d", i), "offer": map[string]any{"type": "offer", "sdp": fmt.Sprintf("sdp-%d", i)}}
	}
	return out
}

func ann(extra map[string]any) string {
	m := map[string]any{"action": "announce", "info_hash": tryHash, "peer_id": tryPeer}
	maps.Copy(m, extra)
	for k, v := range m {
		if v == nil {
			delete(m, k) // nil means "leave the field out"
		}
	}
	return js(m)
}

type decodeWant struct {
	err      bool
	fail     string
	action   action
	event    event
	seeder   bool
	numwant  int // -1: hasNumwant false
	offers   int
	seen     int
	answer   bool
	hashes   int // scrape
	all      bool
	infoHash string // when set, hasInfoHash and equal
}

func TestDecode(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name string
		msg  string
		want decodeWant
	}{
		// announce shapes
		{"trystero announce", ann(map[string]any{"numwant": 3, "offers": offersN(3)}),
			decodeWant{action: actionAnnounce, numwant: 3, offers: 3, seen: 3, infoHash: tryHash}},
		{"trystero passive", ann(map[string]any{"numwant": 3, "left": 0, "offers": []any{}}),
			decodeWant{action: actionAnnounce, numwant: 3, seeder: true, infoHash: tryHash}},
		{"webtorrent announce", js(map[string]any{"numwant": 50, "uploaded": 0, "downloaded": 0, "left": 1234, "event": "started",
			"action": "announce", "info_hash": binHash, "peer_id": binPeer, "offers": offersN(5)}),
			decodeWant{action: actionAnnounce, event: eventStarted, numwant: 50, offers: 5, seen: 5, infoHash: binHash}},
		{"webtorrent escaped ids", `{"action":"announce","info_hash":"` + strings.Repeat(`\u00ff`, 20) + `","peer_id":"` + strings.Repeat(`\"`, 20) + `"}`,
			decodeWant{action: actionAnnounce, numwant: -1, infoHash: strings.Repeat("\u00ff", 20)}},
		{"escaped key", `{"\u0061ction":"announce","info_hash":"` + tryHash + `","peer_id":"` + tryPeer + `"}`,
			decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"whitespace everywhere", " \t\n{ \"action\" : \"announce\" ,\r\n \"info_hash\" : \"" + tryHash + "\" , \"peer_id\":\"" + tryPeer + "\" } \n",
			decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"answer", ann(map[string]any{"to_peer_id": binPeer, "offer_id": "o", "answer": map[string]any{"type": "answer", "sdp": "x"}}),
			decodeWant{action: actionAnnounce, numwant: -1, answer: true, infoHash: tryHash}},
		{"answer null is no answer", `{"action":"announce","answer":null,"info_hash":"` + tryHash + `","peer_id":"` + tryPeer + `"}`, decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"answer without to_peer_id", ann(map[string]any{"offer_id": "o", "answer": map[string]any{}}),
			decodeWant{err: true, fail: reasonInvalidToPeerID, action: actionAnnounce, infoHash: tryHash}},
		{"answer with bad to_peer_id", ann(map[string]any{"to_peer_id": "short", "offer_id": "o", "answer": map[string]any{}}),
			decodeWant{err: true, fail: reasonInvalidToPeerID, action: actionAnnounce, infoHash: tryHash}},
		{"answer without offer_id", ann(map[string]any{"to_peer_id": binPeer, "answer": map[string]any{}}),
			decodeWant{err: true, fail: reasonInvalidOfferID, action: actionAnnounce, infoHash: tryHash}},
		{"offer_id 64 bytes", ann(map[string]any{"to_peer_id": binPeer, "offer_id": strings.Repeat("o", 64), "answer": 1}),
			decodeWant{action: actionAnnounce, numwant: -1, answer: true, infoHash: tryHash}},
		{"offer_id too long", ann(map[string]any{"to_peer_id": binPeer, "offer_id": strings.Repeat("o", 65), "answer": 1}),
			decodeWant{err: true, fail: reasonInvalidOfferID, action: actionAnnounce, infoHash: tryHash}},
		{"offer_id not a string", ann(map[string]any{"to_peer_id": binPeer, "offer_id": 7, "answer": 1}),
			decodeWant{err: true, fail: reasonInvalidOfferID, action: actionAnnounce, infoHash: tryHash}},
		{"offers offer_id too long", ann(map[string]any{"offers": []any{map[string]any{"offer_id": strings.Repeat("o", 65), "offer": 1}}}),
			decodeWant{err: true, fail: reasonInvalidOffers, action: actionAnnounce, infoHash: tryHash}},
		{"offers missing offer", ann(map[string]any{"offers": []any{map[string]any{"offer_id": "o"}}}),
			decodeWant{err: true, fail: reasonInvalidOffers, action: actionAnnounce, infoHash: tryHash}},
		{"offers missing offer_id", ann(map[string]any{"offers": []any{map[string]any{"offer": 1}}}),
			decodeWant{err: true, fail: reasonInvalidOffers, action: actionAnnounce, infoHash: tryHash}},
		{"offers not objects", ann(map[string]any{"offers": []any{"sdp"}}),
			decodeWant{err: true, fail: reasonInvalidOffers, action: actionAnnounce, infoHash: tryHash}},
		{"offers not an array is ignored", ann(map[string]any{"offers": "nope"}), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"offers over the limit kept to the limit", ann(map[string]any{"offers": offersN(25)}),
			decodeWant{action: actionAnnounce, numwant: -1, offers: 10, seen: 25, infoHash: tryHash}},
		{"1000 offers", ann(map[string]any{"offers": offersN(1000)}),
			decodeWant{action: actionAnnounce, numwant: -1, offers: 10, seen: 1000, infoHash: tryHash}},

		// events
		{"event started", ann(map[string]any{"event": "started"}), decodeWant{action: actionAnnounce, event: eventStarted, numwant: -1, infoHash: tryHash}},
		{"event stopped", ann(map[string]any{"event": "stopped"}), decodeWant{action: actionAnnounce, event: eventStopped, numwant: -1, infoHash: tryHash}},
		{"event completed", ann(map[string]any{"event": "completed"}), decodeWant{action: actionAnnounce, event: eventCompleted, numwant: -1, infoHash: tryHash}},
		{"event update", ann(map[string]any{"event": "update"}), decodeWant{action: actionAnnounce, event: eventUpdate, numwant: -1, infoHash: tryHash}},
		{"event paused", ann(map[string]any{"event": "paused"}), decodeWant{action: actionAnnounce, event: eventUpdate, numwant: -1, infoHash: tryHash}},
		{"event empty", ann(map[string]any{"event": "empty"}), decodeWant{action: actionAnnounce, event: eventUpdate, numwant: -1, infoHash: tryHash}},
		{"event empty string", ann(map[string]any{"event": ""}), decodeWant{action: actionAnnounce, event: eventUpdate, numwant: -1, infoHash: tryHash}},
		{"event null", `{"action":"announce","event":null,"info_hash":"` + tryHash + `","peer_id":"` + tryPeer + `"}`,
			decodeWant{action: actionAnnounce, event: eventUpdate, numwant: -1, infoHash: tryHash}},
		{"event absent", ann(nil), decodeWant{action: actionAnnounce, event: eventUpdate, numwant: -1, infoHash: tryHash}},
		{"event unknown", ann(map[string]any{"event": "exploded"}),
			decodeWant{err: true, fail: reasonInvalidEvent, action: actionAnnounce, infoHash: tryHash}},

		// left
		{"left 0 is a seeder", ann(map[string]any{"left": 0}), decodeWant{action: actionAnnounce, seeder: true, numwant: -1, infoHash: tryHash}},
		{"left 0.0 is a seeder", strings.Replace(ann(map[string]any{"left": 4242}), "4242", "0.0", 1), decodeWant{action: actionAnnounce, seeder: true, numwant: -1, infoHash: tryHash}},
		{"left -0 is a seeder", strings.Replace(ann(map[string]any{"left": 4242}), "4242", "-0", 1), decodeWant{action: actionAnnounce, seeder: true, numwant: -1, infoHash: tryHash}},
		{"left null is a seeder", `{"action":"announce","left":null,"info_hash":"` + tryHash + `","peer_id":"` + tryPeer + `"}`,
			decodeWant{action: actionAnnounce, seeder: true, numwant: -1, infoHash: tryHash}},
		{"left absent is a leecher", ann(nil), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"left 5 is a leecher", ann(map[string]any{"left": 5}), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"left 1e3 is a leecher", strings.Replace(ann(map[string]any{"left": 4242}), "4242", "1e3", 1), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"left object is a leecher", ann(map[string]any{"left": map[string]any{"a": 0}}), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},

		// numwant
		{"numwant 0", ann(map[string]any{"numwant": 0}), decodeWant{action: actionAnnounce, numwant: 0, infoHash: tryHash}},
		{"numwant 82", ann(map[string]any{"numwant": 82}), decodeWant{action: actionAnnounce, numwant: 82, infoHash: tryHash}},
		{"numwant huge is capped", strings.Replace(ann(map[string]any{"numwant": 4242}), "4242", "99999999999999999999999", 1),
			decodeWant{action: actionAnnounce, numwant: 1 << 20, infoHash: tryHash}},
		{"numwant negative ignored", ann(map[string]any{"numwant": -3}), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"numwant fraction ignored", ann(map[string]any{"numwant": 1.5}), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},
		{"numwant string ignored", ann(map[string]any{"numwant": "3"}), decodeWant{action: actionAnnounce, numwant: -1, infoHash: tryHash}},

		// ids
		{"info_hash missing", js(map[string]any{"action": "announce", "peer_id": tryPeer}),
			decodeWant{err: true, fail: reasonInvalidInfoHash, action: actionAnnounce}},
		{"info_hash 19", ann(map[string]any{"info_hash": tryHash[:19]}), decodeWant{err: true, fail: reasonInvalidInfoHash, action: actionAnnounce}},
		{"info_hash 21", ann(map[string]any{"info_hash": tryHash + "x"}), decodeWant{err: true, fail: reasonInvalidInfoHash, action: actionAnnounce}},
		{"info_hash over U+00FF", ann(map[string]any{"info_hash": "\u0100" + tryHash[1:]}), decodeWant{err: true, fail: reasonInvalidInfoHash, action: actionAnnounce}},
		{"info_hash number", ann(map[string]any{"info_hash": 12}), decodeWant{err: true, fail: reasonInvalidInfoHash, action: actionAnnounce}},
		{"peer_id missing", js(map[string]any{"action": "announce", "info_hash": tryHash}),
			decodeWant{err: true, fail: reasonInvalidPeerID, action: actionAnnounce, infoHash: tryHash}},
		{"peer_id over U+00FF", ann(map[string]any{"peer_id": strings.Repeat("€", 20)}),
			decodeWant{err: true, fail: reasonInvalidPeerID, action: actionAnnounce, infoHash: tryHash}},
		{"peer_id escaped surrogate", `{"action":"announce","info_hash":"` + tryHash + `","peer_id":"\ud83d\ude00` + tryPeer[1:] + `"}`,
			decodeWant{err: true, fail: reasonInvalidPeerID, action: actionAnnounce, infoHash: tryHash}},

		// scrape
		{"scrape one", js(map[string]any{"action": "scrape", "info_hash": binHash}), decodeWant{action: actionScrape, numwant: -1, hashes: 1, infoHash: binHash}},
		{"scrape list", js(map[string]any{"action": "scrape", "info_hash": []string{binHash, tryHash}}), decodeWant{action: actionScrape, numwant: -1, hashes: 2}},
		{"scrape empty list", js(map[string]any{"action": "scrape", "info_hash": []string{}}), decodeWant{action: actionScrape, numwant: -1}},
		{"scrape absent", js(map[string]any{"action": "scrape"}), decodeWant{action: actionScrape, numwant: -1, all: true}},
		{"scrape list with a bad hash", js(map[string]any{"action": "scrape", "info_hash": []string{binHash, "short"}}),
			decodeWant{err: true, fail: reasonInvalidInfoHash, action: actionScrape}},
		{"scrape list too long", js(map[string]any{"action": "scrape", "info_hash": slices.Repeat([]string{tryHash}, 65)}),
			decodeWant{err: true, fail: reasonTooManyHashes, action: actionScrape}},

		// actions
		{"unknown action", js(map[string]any{"action": "connect", "info_hash": tryHash}), decodeWant{err: true, fail: reasonInvalidAction, infoHash: tryHash}},
		{"action number", `{"action":1}`, decodeWant{err: true, fail: reasonInvalidAction}},
		{"action missing", js(map[string]any{"info_hash": tryHash, "peer_id": tryPeer}), decodeWant{err: true, fail: reasonInvalidAction, infoHash: tryHash}},
		{"empty object", `{}`, decodeWant{err: true, fail: reasonInvalidAction}},
		{"action case matters", `{"Action":"announce"}`, decodeWant{err: true, fail: reasonInvalidAction}},

		// not JSON, not an object
		{"empty", ``, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"garbage", `hello`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"unterminated object", `{"action":"announce"`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"missing value", `{"action":}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"trailing comma", `{"action":"scrape",}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"single quotes", `{'action':'scrape'}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"unterminated string", `{"action":"scr`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"control char in string", "{\"action\":\"scr\x01ape\"}", decodeWant{err: true, fail: reasonInvalidJSON}},
		{"bad escape", `{"action":"\x41"}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"short unicode escape", `{"action":"\u12"}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"invalid UTF-8 in string", "{\"action\":\"\xff\"}", decodeWant{err: true, fail: reasonInvalidJSON}},
		{"bad number", `{"numwant":01}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"bad number 2", `{"numwant":1.}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"bad number 3", `{"numwant":-}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"bad literal", `{"left":nul}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"trailing data", `{"action":"scrape"} {}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"trailing garbage", `{"action":"scrape"}x`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"two objects", `{}{}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"array", `[{"action":"scrape"}]`, decodeWant{err: true, fail: reasonNotObject}},
		{"string", `"announce"`, decodeWant{err: true, fail: reasonNotObject}},
		{"number", `42`, decodeWant{err: true, fail: reasonNotObject}},
		{"null", `null`, decodeWant{err: true, fail: reasonNotObject}},
		{"true", `true`, decodeWant{err: true, fail: reasonNotObject}},
		{"deep array", deep(100000), decodeWant{err: true, fail: reasonInvalidJSON}},
		{"deep in unknown field", `{"x":` + deep(1000) + `}`, decodeWant{err: true, fail: reasonInvalidJSON}},
		{"deep in offer", `{"action":"announce","info_hash":"` + tryHash + `","peer_id":"` + tryPeer + `","offers":[{"offer_id":"o","offer":` + deep(200) + `}]}`,
			decodeWant{err: true, fail: reasonInvalidJSON}},
		{"moderate nesting is fine", `{"action":"scrape","info_hash":"` + tryHash + `","x":` + deep(50) + `}`,
			decodeWant{action: actionScrape, numwant: -1, hashes: 1, infoHash: tryHash}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDecoder(10, 64)
			r, err := d.decode([]byte(tt.msg))
			w := tt.want
			if (err != nil) != w.err {
				t.Fatalf("decode(%.200q) err=%v fail=%q, want error %v", tt.msg, err, r.fail, w.err)
			}
			if r.fail != w.fail {
				t.Fatalf("fail = %q, want %q", r.fail, w.fail)
			}
			if (!w.err || w.action != 0) && r.action != w.action {
				t.Errorf("action = %d, want %d", r.action, w.action)
			}
			if w.infoHash != "" && (!r.hasInfoHash || r.infoHash != mustID(t, w.infoHash)) {
				t.Errorf("info_hash = %q (has %v), want %q", latin1(r.infoHash[:]), r.hasInfoHash, w.infoHash)
			}
			if !w.err && w.infoHash == "" && r.hasInfoHash && !r.hashList {
				t.Errorf("unexpected info_hash %q", latin1(r.infoHash[:]))
			}
			if err != nil {
				return
			}
			if r.event != w.event || r.seeder != w.seeder {
				t.Errorf("event=%d seeder=%v, want %d %v", r.event, r.seeder, w.event, w.seeder)
			}
			if w.numwant < 0 && r.hasNumwant || w.numwant >= 0 && (!r.hasNumwant || r.numwant != w.numwant) {
				t.Errorf("numwant=%d (has %v), want %d", r.numwant, r.hasNumwant, w.numwant)
			}
			if len(r.offers) != w.offers || r.offersSeen != w.seen {
				t.Errorf("offers=%d seen=%d, want %d %d", len(r.offers), r.offersSeen, w.offers, w.seen)
			}
			if (r.answer != nil) != w.answer {
				t.Errorf("answer=%q, want present %v", r.answer, w.answer)
			}
			if len(r.scrapeHashes) != w.hashes || r.scrapeAll != w.all {
				t.Errorf("scrape hashes=%d all=%v, want %d %v", len(r.scrapeHashes), r.scrapeAll, w.hashes, w.all)
			}
			if r.peerID != (ID{}) && r.action == actionAnnounce && !r.hasPeerID {
				t.Errorf("peer_id set without hasPeerID")
			}
		})
	}
}

// TestDecodeKeepsRawValues: offers, answers and offer_ids are forwarded byte for byte, and
// trystero's encrypted "sdp" is never looked at.
func TestDecodeKeepsRawValues(t *testing.T) {
	offer := `{"type":"offer","sdp":"12,3,4$aGVsbG8=\n","extra":[1,{"a":null}]}`
	msg := `{"action":"announce","info_hash":"` + tryHash + `","peer_id":"` + tryPeer +
		`","offers":[{"offer_id":"id\u00e9\"x","offer":` + offer + `},{"offer":  7.5e3 ,"offer_id":"b"}]}`
	d := newDecoder(10, 64)
	r, err := d.decode([]byte(msg))
	if err != nil {
		t.Fatalf("decode: %v (%s)", err, r.fail)
	}
	if len(r.offers) != 2 {
		t.Fatalf("offers = %d", len(r.offers))
	}
	if string(r.offers[0].offer) != offer || string(r.offers[0].offerID) != `"id\u00e9\"x"` {
		t.Fatalf("offer 0 = %s / %s", r.offers[0].offer, r.offers[0].offerID)
	}
	if string(r.offers[1].offer) != `7.5e3` || string(r.offers[1].offerID) != `"b"` {
		t.Fatalf("offer 1 = %s / %s", r.offers[1].offer, r.offers[1].offerID)
	}
	answer := `{"type":"answer","sdp":"\u2028</script>"}`
	msg = `{"action":"announce","answer":` + answer + `,"offer_id":"o1","to_peer_id":"` + binPeer + `","info_hash":"` + tryHash + `","peer_id":"` + tryPeer + `"}`
	msg = strings.Replace(msg, `"`+binPeer+`"`, js(binPeer), 1)
	r, err = d.decode([]byte(msg))
	if err != nil {
		t.Fatalf("decode answer: %v (%s)", err, r.fail)
	}
	if string(r.answer) != answer || string(r.offerID) != `"o1"` || r.toPeerID != mustID(t, binPeer) {
		t.Fatalf("answer %s offer_id %s to %q", r.answer, r.offerID, latin1(r.toPeerID[:]))
	}
}

// TestDecoderReuse: one decoder per loop serves every message; nothing from one message may
// leak into the next.
func TestDecoderReuse(t *testing.T) {
	d := newDecoder(10, 64)
	if _, err := d.decode([]byte(ann(map[string]any{"offers": offersN(3), "left": 0, "event": "completed", "numwant": 2}))); err != nil {
		t.Fatal(err)
	}
	r, err := d.decode([]byte(js(map[string]any{"action": "scrape", "info_hash": []string{tryHash}})))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.offers) != 0 || r.seeder || r.event != eventUpdate || r.hasNumwant || r.hasPeerID || len(r.scrapeHashes) != 1 {
		t.Fatalf("state leaked between messages: %+v", r)
	}
	if _, err := d.decode([]byte(`[`)); err == nil {
		t.Fatal("want error")
	}
	if r, err = d.decode([]byte(ann(nil))); err != nil || r.fail != "" {
		t.Fatalf("decoder did not recover after an error: %v %q", err, r.fail)
	}
}

func TestDecodeErrorKinds(t *testing.T) {
	d := newDecoder(10, 64)
	if _, err := d.decode([]byte(`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`)); !errors.Is(err, errTooDeep) {
		t.Errorf("deep nesting: err = %v, want errTooDeep", err)
	}
	if _, err := d.decode([]byte(`{} x`)); !errors.Is(err, errTrailing) {
		t.Errorf("trailing: err = %v, want errTrailing", err)
	}
	if _, err := d.decode([]byte(`[]`)); !errors.Is(err, errNotObj) {
		t.Errorf("array: err = %v, want errNotObj", err)
	}
}

// keysOf decodes a reply and returns its top-level keys, failing on invalid JSON.
func keysOf(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON %q", b)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func jsonString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a string: %v", raw, err)
	}
	return s
}

func TestReplyEncoders(t *testing.T) {
	ih, from := mustID(t, binHash), mustID(t, binPeer)
	t.Run("announce reply", func(t *testing.T) {
		m := keysOf(t, appendAnnounceReply(nil, &ih, 20, Counts{Complete: 3, Incomplete: 4}))
		if got := sortedKeys(m); !slices.Equal(got, []string{"action", "complete", "incomplete", "info_hash", "interval"}) {
			t.Fatalf("keys %v", got)
		}
		if jsonString(t, m["action"]) != "announce" || jsonString(t, m["info_hash"]) != binHash ||
			string(m["interval"]) != "20" || string(m["complete"]) != "3" || string(m["incomplete"]) != "4" {
			t.Fatalf("reply %v", m)
		}
	})
	for _, kind := range []string{"offer", "answer"} {
		t.Run("forwarded "+kind, func(t *testing.T) {
			payload := `{"type":"` + kind + `","sdp":"v=0\r\n"}`
			m := keysOf(t, appendForward(nil, kind, []byte(payload), []byte(`"oid\u00e9"`), &from, &ih))
			if got := sortedKeys(m); !slices.Equal(got, slices.Sorted(slices.Values([]string{"action", "info_hash", kind, "offer_id", "peer_id"}))) {
				t.Fatalf("keys %v", got)
			}
			if jsonString(t, m["action"]) != "announce" || string(m[kind]) != payload || jsonString(t, m["offer_id"]) != "oidé" ||
				jsonString(t, m["peer_id"]) != binPeer || jsonString(t, m["info_hash"]) != binHash {
				t.Fatalf("message %v", m)
			}
		})
	}
	t.Run("scrape reply", func(t *testing.T) {
		other := mustID(t, tryHash)
		b := appendScrapeReply(nil, []ID{ih, other}, []Counts{{1, 2}, {0, 0}}, 20)
		var r struct {
			Action string                    `json:"action"`
			Files  map[string]map[string]int `json:"files"`
			Flags  map[string]int            `json:"flags"`
		}
		keys := keysOf(t, b)
		if got := sortedKeys(keys); !slices.Equal(got, []string{"action", "files", "flags"}) {
			t.Fatalf("keys %v", got)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]int{
			binHash: {"complete": 1, "incomplete": 2, "downloaded": 1},
			tryHash: {"complete": 0, "incomplete": 0, "downloaded": 0},
		}
		if r.Action != "scrape" || fmt.Sprint(r.Files) != fmt.Sprint(want) || fmt.Sprint(r.Flags) != fmt.Sprint(map[string]int{"min_request_interval": 20}) {
			t.Fatalf("scrape reply %s", b)
		}
		keysOf(t, appendScrapeReply(nil, nil, nil, 20))
	})
	t.Run("failures", func(t *testing.T) {
		reasons := []string{reasonInvalidJSON, reasonNotObject, reasonInvalidAction, reasonInvalidInfoHash, reasonInvalidPeerID,
			reasonInvalidToPeerID, reasonInvalidOfferID, reasonInvalidOffers, reasonInvalidEvent, reasonTooManyHashes, reasonFullScrape,
			ErrSwarmFull.Error(), ErrTooManySwarms.Error(), ErrTrackerFull.Error(), "rate limit exceeded: slow down"}
		for _, reason := range reasons {
			for _, a := range []action{actionAnnounce, actionScrape} {
				m := keysOf(t, appendFailure(nil, a, nil, reason))
				if got := sortedKeys(m); !slices.Equal(got, []string{"action", "failure reason"}) {
					t.Fatalf("keys %v", got)
				}
				if jsonString(t, m["failure reason"]) != reason {
					t.Fatalf("reason %s", m["failure reason"])
				}
				want := map[action]string{actionAnnounce: "announce", actionScrape: "scrape"}[a]
				if jsonString(t, m["action"]) != want {
					t.Fatalf("action %s", m["action"])
				}
				m = keysOf(t, appendFailure(nil, a, &ih, reason))
				if jsonString(t, m["info_hash"]) != binHash {
					t.Fatalf("info_hash %s", m["info_hash"])
				}
			}
		}
	})
}
