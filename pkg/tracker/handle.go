package tracker

import "errors"

// worker is the per-reader scratch space: one per event loop (or per TLS connection), so
// message handling allocates nothing in the steady state.
type worker struct {
	dec    *decoder
	b      batch
	reply  []byte
	msg    []byte
	dst    []Endpoint
	counts []Counts
}

func (s *Server) newWorker() *worker {
	return &worker{
		dec:   newDecoder(s.cfg.Limits.OffersPerAnnounce, s.cfg.Limits.ScrapeHashes),
		reply: make([]byte, 0, 256),
		msg:   make([]byte, 0, 2048),
	}
}

// handle decodes one message and acts on it. Replies and forwarded messages are queued on w.b
// and leave when the caller flushes the batch.
func (s *Server) handle(c *conn, msg []byte, w *worker, now int64) {
	r, err := w.dec.decode(msg)
	if err != nil {
		s.metrics.refused.WithLabelValues(refusedInvalid).Inc()
		var ih *ID
		if r.hasInfoHash {
			ih = &r.infoHash
		}
		act := r.action
		if act == 0 {
			act = actionAnnounce
		}
		w.reply = appendFailure(w.reply[:0], act, ih, r.fail)
		c.queueFrame(opText, w.reply, &w.b)
		return
	}
	switch r.action {
	case actionAnnounce:
		s.announce(c, r, w, now)
	case actionScrape:
		s.scrape(c, r, w)
	}
}

func (s *Server) announce(c *conn, r *request, w *worker, now int64) {
	s.metrics.announces.Inc()
	if r.event == eventStopped {
		counts := s.registry.Leave(c, r.infoHash, r.peerID)
		w.reply = appendAnnounceReply(w.reply[:0], &r.infoHash, s.intervalSeconds, counts)
		c.queueFrame(opText, w.reply, &w.b)
		return
	}
	// "completed" makes a seeder whatever left says, as in the reference.
	seeder := r.seeder || r.event == eventCompleted
	args := announceArgs{infoHash: r.infoHash, peerID: r.peerID, seeder: seeder, now: now / 1e9}
	if r.answer != nil {
		args.answerTo = &r.toPeerID
	} else {
		args.want = len(r.offers)
		if r.hasNumwant && r.numwant < args.want {
			args.want = r.numwant
		}
		if r.offersSeen > len(r.offers) {
			s.metrics.refused.WithLabelValues(refusedOffers).Add(float64(r.offersSeen - len(r.offers)))
		}
	}
	counts, dst, err := s.registry.Announce(c, &args, w.dst[:0])
	w.dst = dst
	switch {
	case err == nil:
	case errors.Is(err, errUnknownPeer), errors.Is(err, errAnswerSelf):
		// The reference stays silent here; clients retry with their next offers.
		s.metrics.refused.WithLabelValues(refusedUnknownPeer).Inc()
		return
	default:
		reason := refusedSwarmFull
		switch {
		case errors.Is(err, ErrTooManySwarms):
			reason = refusedConnSwarms
		case errors.Is(err, ErrTrackerFull):
			reason = refusedTrackerFull
		}
		s.metrics.refused.WithLabelValues(reason).Inc()
		w.reply = appendFailure(w.reply[:0], actionAnnounce, &r.infoHash, err.Error())
		c.queueFrame(opText, w.reply, &w.b)
		return
	}
	if r.answer != nil {
		w.msg = appendForward(w.msg[:0], "answer", r.answer, r.offerID, &r.peerID, &r.infoHash)
		if dst[0].Send(w.msg, &w.b) {
			s.metrics.answers.Inc()
		}
		return
	}
	for i, to := range dst {
		o := &r.offers[i]
		w.msg = appendForward(w.msg[:0], "offer", o.offer, o.offerID, &r.peerID, &r.infoHash)
		if to.Send(w.msg, &w.b) {
			s.metrics.offers.Inc()
		}
	}
	w.reply = appendAnnounceReply(w.reply[:0], &r.infoHash, s.intervalSeconds, counts)
	c.queueFrame(opText, w.reply, &w.b)
}

func (s *Server) scrape(c *conn, r *request, w *worker) {
	s.metrics.scrapes.Inc()
	if r.scrapeAll {
		if !s.cfg.FullScrape {
			s.metrics.refused.WithLabelValues(refusedFullScrape).Inc()
			w.reply = appendFailure(w.reply[:0], actionScrape, nil, reasonFullScrape)
			c.queueFrame(opText, w.reply, &w.b)
			return
		}
		r.scrapeHashes = s.registry.Hashes(r.scrapeHashes[:0], s.cfg.Limits.ScrapeHashes)
	}
	w.counts = s.registry.Scrape(r.scrapeHashes, w.counts[:0])
	w.reply = appendScrapeReply(w.reply[:0], r.scrapeHashes, w.counts, s.intervalSeconds)
	c.queueFrame(opText, w.reply, &w.b)
}

func appendAnnounceReply(dst []byte, ih *ID, interval int, c Counts) []byte {
	dst = append(dst, `{"action":"announce","interval":`...)
	dst = appendInt(dst, interval)
	dst = append(dst, `,"info_hash":`...)
	dst = appendIDJSON(dst, ih)
	dst = append(dst, `,"complete":`...)
	dst = appendInt(dst, c.Complete)
	dst = append(dst, `,"incomplete":`...)
	dst = appendInt(dst, c.Incomplete)
	return append(dst, '}')
}

// appendForward builds the offer or answer message a peer receives: the payload and offer_id as
// sent, the sender's peer_id and the swarm's info_hash.
func appendForward(dst []byte, kind string, payload, offerID []byte, from, ih *ID) []byte {
	dst = append(dst, `{"action":"announce","`...)
	dst = append(dst, kind...)
	dst = append(dst, `":`...)
	dst = append(dst, payload...)
	dst = append(dst, `,"offer_id":`...)
	dst = append(dst, offerID...)
	dst = append(dst, `,"peer_id":`...)
	dst = appendIDJSON(dst, from)
	dst = append(dst, `,"info_hash":`...)
	dst = appendIDJSON(dst, ih)
	return append(dst, '}')
}

func appendScrapeReply(dst []byte, hashes []ID, counts []Counts, interval int) []byte {
	dst = append(dst, `{"action":"scrape","files":{`...)
	for i := range hashes {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendIDJSON(dst, &hashes[i])
		dst = append(dst, `:{"complete":`...)
		dst = appendInt(dst, counts[i].Complete)
		dst = append(dst, `,"incomplete":`...)
		dst = appendInt(dst, counts[i].Incomplete)
		dst = append(dst, `,"downloaded":`...)
		dst = appendInt(dst, counts[i].Complete)
		dst = append(dst, '}')
	}
	dst = append(dst, `},"flags":{"min_request_interval":`...)
	dst = appendInt(dst, interval)
	return append(dst, `}}`...)
}

// appendFailure always names the action (and the info_hash when known): WebTorrent clients
// treat an action-less message as a broken socket and reconnect.
func appendFailure(dst []byte, a action, ih *ID, reason string) []byte {
	dst = append(dst, `{"action":"`...)
	if a == actionScrape {
		dst = append(dst, "scrape"...)
	} else {
		dst = append(dst, "announce"...)
	}
	dst = append(dst, `","failure reason":"`...)
	// Fixed ASCII strings, but some quote JSON (reasonInvalidOffers): escape so the reply stays valid.
	for i := 0; i < len(reason); i++ {
		if c := reason[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\', c)
		} else {
			dst = append(dst, c)
		}
	}
	dst = append(dst, '"')
	if ih != nil {
		dst = append(dst, `,"info_hash":`...)
		dst = appendIDJSON(dst, ih)
	}
	return append(dst, '}')
}
