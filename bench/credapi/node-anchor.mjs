// The anchor for credapi's benchmark: a minimal Node.js http server doing the same work per
// request as ChitChatter's API does plus credential minting — exact-origin CORS check,
// random id, HMAC-SHA1 TURN REST password, JSON body with the /v1/ice-servers shape.
// Usage: SECRET=... PORT=... node node-anchor.mjs
import http from 'node:http'
import crypto from 'node:crypto'

const secret = process.env.SECRET
const port = Number(process.env.PORT || 3003)
const origins = new Set(['http://localhost:3000', 'https://chat.example.com'])
const stun = ['stun:127.0.0.1:3478']
const turn = ['turn:127.0.0.1:3478?transport=udp', 'turn:127.0.0.1:3478?transport=tcp']
const ttl = 86400

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  const headers = {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    Vary: 'Origin',
  }
  const origin = req.headers.origin
  if (origin !== undefined) {
    if (!origins.has(origin)) {
      res.writeHead(403, headers)
      res.end(JSON.stringify({error: 'origin_not_allowed', message: 'origin not allowed'}))
      return
    }
    headers['Access-Control-Allow-Origin'] = origin
  }
  if (url.pathname !== '/v1/ice-servers' || req.method !== 'GET') {
    res.writeHead(404, headers)
    res.end(JSON.stringify({error: 'not_found', message: 'no such endpoint'}))
    return
  }
  const expiry = Math.floor(Date.now() / 1000) + ttl
  const username = `${expiry}:${crypto.randomBytes(12).toString('base64url')}`
  const credential = crypto.createHmac('sha1', secret).update(username).digest('base64')
  res.writeHead(200, headers)
  res.end(JSON.stringify({
    iceServers: [{urls: stun}, {urls: turn, username, credential}],
    iceTransportPolicy: 'all',
    ttl,
    expiresAt: new Date(expiry * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  }))
}).listen(port, '127.0.0.1')
