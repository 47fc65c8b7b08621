package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/credapi"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// handlerResponder answers each request with credapi's real handler (Server.ServeHTTP: CORS,
// both rate limiters, parameters, HMAC, JSON, metrics) instead of the fixed response: the
// floor plus exactly the work a custom transport could not avoid. It parses only the request
// line and the Origin header — a bench approximation of a transport, not a safe parser.
type handlerResponder struct {
	srv  *credapi.Server
	req  http.Request
	u    url.URL
	w    bufWriter
	date []byte
	sec  int64
}

func newHandlerResponder() *handlerResponder {
	cfg := credapi.DefaultConfig()
	cfg.ICE.URLs = []string{"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"}
	cfg.CORS.Origins = []string{"http://localhost:3000", "https://chat.example.com"}
	cfg.RateLimit.PerMinute, cfg.RateLimit.Burst = 1e9, 1_000_000
	cfg.RateLimit.GlobalPerSecond, cfg.RateLimit.GlobalBurst = 1e9, 1_000_000
	srv, err := credapi.New(cfg, turncred.Static(os.Getenv("SECRET")), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	h := &handlerResponder{srv: srv, w: bufWriter{h: http.Header{}}}
	h.req = http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, URL: &h.u,
		Header: http.Header{}, RemoteAddr: "127.0.0.1:40000"}
	return h
}

// respond appends the answer to the request head in head (without its final CRLFCRLF) to out.
func (h *handlerResponder) respond(out, head []byte) []byte {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	method, line, _ := bytes.Cut(line, []byte(" "))
	target, _, _ := bytes.Cut(line, []byte(" "))
	path, query, _ := bytes.Cut(target, []byte("?"))
	h.req.Method = string(method)
	h.u.Path, h.u.RawQuery = string(path), string(query)
	clear(h.req.Header)
	for len(rest) > 0 {
		var hl []byte
		hl, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if k, v, ok := bytes.Cut(hl, []byte(":")); ok && bytes.EqualFold(k, []byte("Origin")) {
			h.req.Header["Origin"] = []string{string(bytes.TrimSpace(v))}
		}
	}
	clear(h.w.h)
	h.w.code, h.w.body = 200, h.w.body[:0]
	h.srv.ServeHTTP(&h.w, &h.req)
	if now := time.Now().Unix(); now != h.sec {
		h.sec, h.date = now, time.Unix(now, 0).UTC().AppendFormat(h.date[:0], http.TimeFormat)
	}
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(h.w.code), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(h.w.code)...)
	out = append(out, "\r\n"...)
	for k, vs := range h.w.h {
		for _, v := range vs {
			out = append(append(append(append(out, k...), ": "...), v...), "\r\n"...)
		}
	}
	out = append(append(append(out, "Date: "...), h.date...), "\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(h.w.body)), 10)
	out = append(out, "\r\n\r\n"...)
	return append(out, h.w.body...)
}

type bufWriter struct {
	h    http.Header
	code int
	body []byte
}

func (w *bufWriter) Header() http.Header         { return w.h }
func (w *bufWriter) WriteHeader(code int)        { w.code = code }
func (w *bufWriter) Write(b []byte) (int, error) { w.body = append(w.body, b...); return len(b), nil }
