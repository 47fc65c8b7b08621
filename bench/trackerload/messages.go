package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"unicode/utf8"
)

// Ids are 20-char "binary strings": one char per byte, U+0000-U+00FF, the way WebTorrent
// sends them. Most are ASCII like trystero's; a share carries chars U+0080-U+00FF, which
// travel as two UTF-8 bytes each, to exercise the binary-id path of the tracker.
const idLen = 20

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func newID(r *rand.Rand, binaryShare float64) string {
	binary := r.Float64() < binaryShare
	var b []byte
	for range idLen {
		if binary && r.IntN(3) == 0 {
			b = utf8.AppendRune(b, rune(0x80+r.IntN(0x80)))
		} else {
			b = append(b, idAlphabet[r.IntN(len(idAlphabet))])
		}
	}
	return string(b)
}

// swarmPicker draws torrent indexes with a Zipf skew: a few big swarms and a long tail of
// small ones, like rooms of a real deployment.
type swarmPicker struct {
	hashes []string
	s      float64
}

func newSwarmPicker(r *rand.Rand, n int, s, binaryShare float64) *swarmPicker {
	p := &swarmPicker{s: s}
	for range n {
		p.hashes = append(p.hashes, newID(r, binaryShare))
	}
	return p
}

// pick returns a hash with P(k) proportional to (k+1)^-s, by inverse-CDF over the
// continuous approximation; good enough for a load shape and cheap.
func (p *swarmPicker) pick(r *rand.Rand) string {
	n := float64(len(p.hashes))
	if p.s <= 0 || n == 1 {
		return p.hashes[r.IntN(len(p.hashes))]
	}
	u := r.Float64()
	var x float64
	if p.s == 1 {
		x = math.Pow(n+1, u)
	} else {
		a := 1 - p.s
		x = math.Pow(1+u*(math.Pow(n+1, a)-1), 1/a)
	}
	k := int(x) - 1
	return p.hashes[min(max(k, 0), len(p.hashes)-1)]
}

// appendJSONString appends s quoted. Ids here carry no quote, backslash or control
// character unless a server sent one back, so the escape branch is rare.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

type announce struct {
	infoHash, peerID string
	seeder           bool
	offers           int
	sdp              string
}

func appendAnnounce(b []byte, a announce, r *rand.Rand, binaryShare float64) []byte {
	b = append(b, `{"action":"announce","info_hash":`...)
	b = appendJSONString(b, a.infoHash)
	b = append(b, `,"peer_id":`...)
	b = appendJSONString(b, a.peerID)
	if a.seeder {
		b = append(b, `,"event":"completed","left":0`...)
	} else {
		b = append(b, `,"event":"started","left":50`...)
	}
	b = append(b, `,"uploaded":0,"downloaded":0,"numwant":`...)
	b = strconv.AppendInt(b, int64(a.offers), 10)
	b = append(b, `,"offers":[`...)
	for i := range a.offers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"offer_id":`...)
		b = appendJSONString(b, newID(r, binaryShare))
		b = append(b, `,"offer":{"type":"offer","sdp":"`...)
		b = append(b, a.sdp...)
		b = append(b, `"}}`...)
	}
	return append(b, "]}"...)
}

type answer struct {
	infoHash, peerID, toPeerID, offerID, sdp string
}

func appendAnswer(b []byte, a answer) []byte {
	b = append(b, `{"action":"announce","info_hash":`...)
	b = appendJSONString(b, a.infoHash)
	b = append(b, `,"peer_id":`...)
	b = appendJSONString(b, a.peerID)
	b = append(b, `,"to_peer_id":`...)
	b = appendJSONString(b, a.toPeerID)
	b = append(b, `,"offer_id":`...)
	b = appendJSONString(b, a.offerID)
	b = append(b, `,"answer":{"type":"answer","sdp":"`...)
	b = append(b, a.sdp...)
	return append(b, `"}}`...)
}

// Idle connections announce once without offers: they join a swarm and then only wait.
func appendIdleAnnounce(b []byte, infoHash, peerID string) []byte {
	b = append(b, `{"action":"announce","info_hash":`...)
	b = appendJSONString(b, infoHash)
	b = append(b, `,"peer_id":`...)
	b = appendJSONString(b, peerID)
	return append(b, `,"event":"started","left":50,"numwant":0,"offers":[]}`...)
}

type kind int

const (
	kindReply kind = iota
	kindOffer
	kindAnswer
	kindError
	kindScrape
	kindOther
	numKinds
)

var kindNames = [numKinds]string{"reply", "offer", "answer", "error", "scrape", "other"}

// classify sorts a server message by its keys without decoding it: the generator shares
// the machine with the server, so it spends as little CPU per message as it can.
func classify(msg []byte) kind {
	switch {
	case bytes.Contains(msg, []byte(`"failure reason"`)):
		return kindError
	case bytes.Contains(msg, []byte(`"offer":`)):
		return kindOffer
	case bytes.Contains(msg, []byte(`"answer":`)):
		return kindAnswer
	case bytes.Contains(msg, []byte(`"interval"`)):
		return kindReply
	case bytes.Contains(msg, []byte(`"files"`)):
		return kindScrape
	}
	return kindOther
}

type offerMsg struct {
	InfoHash string `json:"info_hash"`
	PeerID   string `json:"peer_id"`
	OfferID  string `json:"offer_id"`
}

type failureMsg struct {
	Reason string `json:"failure reason"`
}

func sdpOf(n int) string {
	const unit = "abcdefg-"
	b := bytes.Repeat([]byte(unit), n/len(unit)+1)
	return string(b[:n])
}
