package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
	"unicode/utf8"
)

func TestIDsAreTwentyBinaryChars(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	binary := 0
	for range 1000 {
		id := newID(r, 0.5)
		if n := utf8.RuneCountInString(id); n != idLen {
			t.Fatalf("id %q has %d chars, want %d", id, n, idLen)
		}
		for _, c := range id {
			if c > 0xFF {
				t.Fatalf("id %q has %U, above U+00FF", id, c)
			}
			if c >= 0x80 {
				binary++
				break
			}
		}
	}
	if binary < 300 || binary > 700 {
		t.Errorf("%d of 1000 ids carry U+0080-U+00FF at share 0.5", binary)
	}
}

func TestMessagesAreValidJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ih, pid := newID(r, 1), newID(r, 1)
	tests := []struct {
		name string
		msg  []byte
		want map[string]any
	}{
		{"announce", appendAnnounce(nil, announce{infoHash: ih, peerID: pid, offers: 3, sdp: sdpOf(10)}, r, 1),
			map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid, "numwant": 3.0, "event": "started"}},
		{"seeder", appendAnnounce(nil, announce{infoHash: ih, peerID: pid, seeder: true, sdp: "x"}, r, 0),
			map[string]any{"event": "completed", "left": 0.0, "numwant": 0.0}},
		{"answer", appendAnswer(nil, answer{infoHash: ih, peerID: pid, toPeerID: "a\"b\\c\x01", offerID: "o", sdp: "s"}),
			map[string]any{"to_peer_id": "a\"b\\c\x01", "offer_id": "o"}},
		{"idle", appendIdleAnnounce(nil, ih, pid), map[string]any{"numwant": 0.0, "info_hash": ih}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v map[string]any
			if err := json.Unmarshal(tt.msg, &v); err != nil {
				t.Fatalf("%s: %v", tt.msg, err)
			}
			for k, want := range tt.want {
				if v[k] != want {
					t.Errorf("%s = %#v, want %#v", k, v[k], want)
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		msg  string
		want kind
	}{
		{`{"complete":1,"incomplete":2,"action":"announce","interval":120,"info_hash":"x"}`, kindReply},
		{`{"action":"announce","offer":{"type":"offer","sdp":"s"},"offer_id":"o","peer_id":"p","info_hash":"x"}`, kindOffer},
		{`{"action":"announce","answer":{"type":"answer","sdp":"s"},"offer_id":"o","peer_id":"p","info_hash":"x"}`, kindAnswer},
		{`{"failure reason":"invalid info_hash"}`, kindError},
		{`{"action":"announce","failure reason":"x","info_hash":"y"}`, kindError},
		{`{"action":"scrape","files":{}}`, kindScrape},
		{`{}`, kindOther},
	}
	for _, tt := range tests {
		if got := classify([]byte(tt.msg)); got != tt.want {
			t.Errorf("classify(%s) = %s, want %s", tt.msg, kindNames[got], kindNames[tt.want])
		}
	}
}

func TestSwarmPickerIsSkewedAndInRange(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := newSwarmPicker(r, 100, 1.1, 0)
	index := map[string]int{}
	for i, h := range p.hashes {
		index[h] = i
	}
	counts := make([]int, 100)
	for range 100000 {
		counts[index[p.pick(r)]]++
	}
	if counts[0] < 5*counts[50] || counts[0] < 5*counts[99] {
		t.Errorf("not skewed: first %d, middle %d, last %d", counts[0], counts[50], counts[99])
	}
	if counts[99] == 0 {
		t.Errorf("the tail is never picked")
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	sortDurations(d)
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {0, 1}, {1, 10}} {
		if got := percentile(d, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}
