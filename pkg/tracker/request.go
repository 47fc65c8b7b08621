package tracker

import (
	"errors"
	"strconv"
)

type action uint8

const (
	actionAnnounce action = iota + 1
	actionScrape
)

type event uint8

const (
	eventUpdate event = iota // absent, "update", "empty", "paused"
	eventStarted
	eventStopped
	eventCompleted
)

// offerRef points into the message buffer: the offer value and the offer_id token, both
// forwarded byte for byte.
type offerRef struct {
	offer   []byte
	offerID []byte
}

// request is one decoded client message. Slices point into the frame buffer and are valid
// only while the message is being handled.
type request struct {
	action      action
	infoHash    ID
	hasInfoHash bool
	peerID      ID
	hasPeerID   bool
	event       event
	seeder      bool
	numwant     int
	hasNumwant  bool
	offers      []offerRef
	offersSeen  int
	answer      []byte
	toPeerID    ID
	hasToPeerID bool
	offerID     []byte

	scrapeHashes []ID
	hashList     bool
	scrapeAll    bool

	// fail is the first problem found; the reply names it, with action and info_hash.
	fail string
}

// Failure reasons sent to clients, fixed strings so they can be counted and documented.
const (
	reasonInvalidJSON     = "invalid JSON"
	reasonNotObject       = "message must be a JSON object"
	reasonInvalidAction   = "invalid action: want announce or scrape"
	reasonInvalidInfoHash = "invalid info_hash: want 20 characters U+0000-U+00FF"
	reasonInvalidPeerID   = "invalid peer_id: want 20 characters U+0000-U+00FF"
	reasonInvalidToPeerID = "invalid `to_peer_id` (required with `answer`)"
	reasonInvalidOfferID  = "invalid offer_id: want a string of at most 64 bytes"
	reasonInvalidOffers   = "invalid offers: want [{\"offer\":{...},\"offer_id\":\"...\"}]"
	reasonInvalidEvent    = "invalid event"
	reasonTooManyHashes   = "too many info_hashes in scrape"
	reasonFullScrape      = "full scrape is disabled: send info_hash"
)

var errFail = errors.New("request refused")

// maxOfferIDBytes bounds the offer_id we echo; trystero and WebTorrent send 20 characters.
const maxOfferIDBytes = 64

// decoder holds reusable scratch space; one per event loop, never shared.
type decoder struct {
	s           scanner
	scratch     []byte
	maxOffers   int
	maxScrape   int
	req         request
	offersStore []offerRef
	hashesStore []ID
}

func newDecoder(maxOffers, maxScrape int) *decoder {
	return &decoder{maxOffers: maxOffers, maxScrape: maxScrape, scratch: make([]byte, 0, 64)}
}

// decode parses msg. On error req.fail holds the reason for the client (and req.action /
// req.infoHash what was learnt, for tagging the failure).
func (d *decoder) decode(msg []byte) (*request, error) {
	d.req = request{offers: d.offersStore[:0], scrapeHashes: d.hashesStore[:0]}
	r := &d.req
	d.s = scanner{b: msg}
	s := &d.s
	err := d.object(r)
	if err == nil {
		s.ws()
		if s.i != len(s.b) {
			err = errTrailing
		}
	}
	d.offersStore, d.hashesStore = r.offers[:0], r.scrapeHashes[:0]
	if err != nil {
		if r.fail == "" {
			switch {
			case errors.Is(err, errNotObj):
				r.fail = reasonNotObject
			default:
				r.fail = reasonInvalidJSON
			}
		}
		return r, err
	}
	if r.fail != "" {
		return r, errFail
	}
	if r.action == 0 {
		r.fail = reasonInvalidAction
		return r, errFail
	}
	if r.action == actionScrape {
		switch {
		case r.hashList:
		case r.hasInfoHash:
			r.scrapeHashes = append(r.scrapeHashes, r.infoHash)
		default:
			r.scrapeAll = true
		}
	}
	if r.action == actionAnnounce {
		switch {
		case !r.hasInfoHash:
			r.fail = reasonInvalidInfoHash
		case !r.hasPeerID:
			r.fail = reasonInvalidPeerID
		case r.answer != nil && !r.hasToPeerID:
			r.fail = reasonInvalidToPeerID
		case r.answer != nil && r.offerID == nil:
			r.fail = reasonInvalidOfferID
		}
	}
	if r.fail != "" {
		return r, errFail
	}
	return r, nil
}

func (d *decoder) setFail(r *request, reason string) {
	if r.fail == "" {
		r.fail = reason
	}
}

func (d *decoder) object(r *request) error {
	s := &d.s
	if s.peek() != '{' {
		if _, err := s.value(0); err != nil {
			return err
		}
		return errNotObj
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, esc, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		d.scratch = unquote(d.scratch[:0], key, esc)
		if err := d.field(r, d.scratch); err != nil {
			return err
		}
		if s.peek() == ',' {
			s.i++
			continue
		}
		return s.expect('}')
	}
}

// field decodes one top-level member. Unknown members (uploaded, downloaded, trackerid...)
// are skipped, as the reference does.
func (d *decoder) field(r *request, key []byte) error {
	s := &d.s
	switch string(key) { // no allocation: the compiler compares in place
	case "action":
		str, ok, err := d.stringValue()
		if err != nil {
			return err
		}
		switch {
		case ok && string(str) == "announce":
			r.action = actionAnnounce
		case ok && string(str) == "scrape":
			r.action = actionScrape
		default:
			d.setFail(r, reasonInvalidAction)
		}
	case "info_hash":
		switch s.peek() {
		case '[':
			return d.hashList(r)
		default:
			return d.idField(r, &r.infoHash, &r.hasInfoHash, reasonInvalidInfoHash)
		}
	case "peer_id":
		return d.idField(r, &r.peerID, &r.hasPeerID, reasonInvalidPeerID)
	case "to_peer_id":
		return d.idField(r, &r.toPeerID, &r.hasToPeerID, reasonInvalidToPeerID)
	case "event":
		str, ok, err := d.stringValue()
		if err != nil {
			return err
		}
		switch {
		case !ok: // null or a non-string: the reference treats a missing event as update
		case string(str) == "started":
			r.event = eventStarted
		case string(str) == "stopped":
			r.event = eventStopped
		case string(str) == "completed":
			r.event = eventCompleted
		case string(str) == "update", string(str) == "empty", string(str) == "paused", len(str) == 0:
			r.event = eventUpdate
		default:
			d.setFail(r, reasonInvalidEvent)
		}
	case "left":
		// Number(left) === 0 makes a seeder; Number(null) is 0 too. Anything else is a leecher.
		switch c := s.peek(); {
		case c == 'n':
			r.seeder = true
			return s.literal("null")
		case c == '-' || c >= '0' && c <= '9':
			zero, _, _, err := s.number()
			r.seeder = zero
			return err
		default:
			_, err := s.value(0)
			return err
		}
	case "numwant":
		if c := s.peek(); c == '-' || c >= '0' && c <= '9' {
			_, n, isInt, err := s.number()
			if err != nil {
				return err
			}
			if isInt && n >= 0 {
				r.numwant, r.hasNumwant = int(min(n, 1<<20)), true
			}
			return nil
		}
		_, err := s.value(0)
		return err
	case "offers":
		if s.peek() != '[' {
			_, err := s.value(0) // the reference ignores a non-array
			return err
		}
		return d.offers(r)
	case "answer":
		raw, err := s.value(1)
		if err != nil {
			return err
		}
		if len(raw) == 4 && string(raw) == "null" {
			return nil
		}
		r.answer = raw
	case "offer_id":
		raw, ok, err := d.offerIDValue()
		if err != nil {
			return err
		}
		if !ok {
			d.setFail(r, reasonInvalidOfferID)
			return nil
		}
		r.offerID = raw
	default:
		_, err := s.value(0)
		return err
	}
	return nil
}

// idField decodes an id member into dst; a malformed id records reason for the reply.
func (d *decoder) idField(r *request, dst *ID, has *bool, reason string) error {
	id, ok, err := d.idValue()
	if err != nil {
		return err
	}
	if !ok {
		d.setFail(r, reason)
		return nil
	}
	*dst, *has = id, true
	return nil
}

// stringValue reads a string into scratch; ok is false (and the value skipped) for non-strings.
// The result is valid until the next use of scratch.
func (d *decoder) stringValue() ([]byte, bool, error) {
	s := &d.s
	if s.peek() != '"' {
		_, err := s.value(0)
		return nil, false, err
	}
	raw, esc, err := s.str()
	if err != nil {
		return nil, false, err
	}
	d.scratch = unquote(d.scratch[:0], raw, esc)
	return d.scratch, true, nil
}

func (d *decoder) idValue() (ID, bool, error) {
	s := &d.s
	if s.peek() != '"' {
		_, err := s.value(0)
		return ID{}, false, err
	}
	raw, esc, err := s.str()
	if err != nil {
		return ID{}, false, err
	}
	if !esc {
		id, ok := decodeID(raw[1 : len(raw)-1])
		return id, ok, nil
	}
	d.scratch = unquote(d.scratch[:0], raw, esc)
	id, ok := decodeID(d.scratch)
	return id, ok, nil
}

func (d *decoder) offerIDValue() ([]byte, bool, error) {
	s := &d.s
	if s.peek() != '"' {
		_, err := s.value(0)
		return nil, false, err
	}
	raw, _, err := s.str()
	if err != nil {
		return nil, false, err
	}
	return raw, len(raw)-2 <= maxOfferIDBytes, nil
}

func (d *decoder) hashList(r *request) error {
	r.hashList = true
	return d.s.elements(func() error {
		id, ok, err := d.idValue()
		if err != nil {
			return err
		}
		switch {
		case !ok:
			d.setFail(r, reasonInvalidInfoHash)
		case len(r.scrapeHashes) >= d.maxScrape:
			d.setFail(r, reasonTooManyHashes)
		default:
			r.scrapeHashes = append(r.scrapeHashes, id)
		}
		return nil
	})
}

func (d *decoder) offers(r *request) error {
	return d.s.elements(func() error { return d.offer(r) })
}

func (d *decoder) offer(r *request) error {
	s := &d.s
	if s.peek() != '{' {
		if _, err := s.value(1); err != nil {
			return err
		}
		d.setFail(r, reasonInvalidOffers)
		return nil
	}
	s.i++
	var o offerRef
	valid := true
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			key, esc, err := s.str()
			if err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			d.scratch = unquote(d.scratch[:0], key, esc)
			switch string(d.scratch) {
			case "offer":
				if o.offer, err = s.value(2); err != nil {
					return err
				}
			case "offer_id":
				raw, ok, err := d.offerIDValue()
				if err != nil {
					return err
				}
				valid = valid && ok
				o.offerID = raw
			default:
				if _, err := s.value(2); err != nil {
					return err
				}
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if err := s.expect('}'); err != nil {
				return err
			}
			break
		}
	}
	r.offersSeen++
	if !valid || o.offer == nil || o.offerID == nil {
		d.setFail(r, reasonInvalidOffers)
		return nil
	}
	if len(r.offers) < d.maxOffers {
		r.offers = append(r.offers, o)
	}
	return nil
}

// appendInt is strconv.AppendInt without the import at call sites.
func appendInt(dst []byte, n int) []byte { return strconv.AppendInt(dst, int64(n), 10) }
