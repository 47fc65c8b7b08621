// A trystero room participant for the browser tests. Query parameters:
//   tracker  tracker WebSocket URL
//   ice      credapi endpoint URL (/v1/ice-servers, or /api/get-config with shape=get-config)
//   shape    ice-servers (trystero/WebRTC shape) | get-config (ChitChatter's single RTCIceServer)
//   room     room name; appId: trystero app id; policy: relay (default) | all
// Everything the test needs is on window.sb; failures are collected, never thrown away.
import {joinRoom, selfId} from '@trystero-p2p/torrent'

const q = new URLSearchParams(location.search)
const log = (...a) => { document.getElementById('log').textContent += a.join(' ') + '\n' }

const sb = window.sb = {
  selfId, peers: [], left: [], joinErrors: [], texts: [], binaries: [], streams: {}, errors: [],
  iceServers: null, ready: false, pcStates: {}, video: {},
}

// Count every RTCPeerConnection's final states (trystero only exposes connected ones), so a
// test can see connections fail rather than wait for them forever.
const NativePC = window.RTCPeerConnection
window.RTCPeerConnection = class extends NativePC {
  constructor(...args) {
    super(...args)
    this.addEventListener('connectionstatechange', () => {
      sb.pcStates[this.connectionState] = (sb.pcStates[this.connectionState] || 0) + 1
    })
  }
}

const hex = buf => [...new Uint8Array(buf)].map(b => b.toString(16).padStart(2, '0')).join('')
const sha256 = async bytes => hex(await crypto.subtle.digest('SHA-256', bytes))

// fetchIceServers follows each client family's own code: trystero users read iceServers;
// ChitChatter (src/hooks/useTurnConfig.ts) fetches one RTCIceServer with Accept JSON,
// requires a JSON content type and a urls field, and uses [server] as iceServers.
async function fetchIceServers() {
  const res = await fetch(q.get('ice'), {headers: {Accept: 'application/json'}})
  if (!res.ok) throw new Error(`credapi answered ${res.status}: ${await res.text()}`)
  if (!(res.headers.get('content-type') || '').includes('application/json')) {
    throw new Error('credapi answered without a JSON content type')
  }
  const body = await res.json()
  if (q.get('shape') === 'get-config') {
    const ok = body && (typeof body.urls === 'string' || Array.isArray(body.urls)) &&
      (!body.username || typeof body.username === 'string') && (!body.credential || typeof body.credential === 'string')
    if (!ok) throw new Error('get-config body is not an RTCIceServer: ' + JSON.stringify(Object.keys(body)))
    return [body]
  }
  if (!Array.isArray(body.iceServers)) throw new Error('no iceServers in the answer')
  return body.iceServers
}

async function start() {
  sb.iceServers = await fetchIceServers()
  const room = joinRoom({
    appId: q.get('appId') || 'switchboard-e2e',
    relayConfig: {urls: [q.get('tracker')], redundancy: 1},
    rtcConfig: {iceServers: sb.iceServers, iceTransportPolicy: q.get('policy') || 'relay'},
  }, q.get('room') || 'room-1', {
    onJoinError: e => { sb.joinErrors.push(String(e?.error ?? e?.message ?? e)); log('join error', sb.joinErrors.at(-1)) },
  })
  sb.room = room
  const text = room.makeAction('text')
  const file = room.makeAction('file')
  room.onPeerJoin = id => { sb.peers.push(id); log('peer joined', id) }
  room.onPeerLeave = id => { sb.left.push(id); sb.peers = sb.peers.filter(p => p !== id); log('peer left', id) }
  text.onMessage = (msg, {peerId}) => { sb.texts.push({from: peerId, text: msg}); log(peerId, msg) }
  file.onMessage = async (data, {peerId}) => {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    sb.binaries.push({from: peerId, size: bytes.byteLength, sha256: await sha256(bytes)})
  }
  room.onPeerStream = (stream, peerId) => {
    const v = document.createElement('video')
    v.muted = true
    v.autoplay = true
    v.playsInline = true
    v.srcObject = stream
    document.getElementById('videos').append(v)
    sb.streams[peerId] = v
    // Poll what arrived, so the test can wait on a plain value.
    setInterval(async () => { sb.video[peerId] = await sb.videoFrom(peerId) }, 200)
  }

  sb.sendText = (msg, target) => text.send(msg, target ? {target} : undefined)
  // sendBinary sends size random bytes to everyone and returns their SHA-256.
  sb.sendBinary = async size => {
    const bytes = new Uint8Array(size)
    for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(i + 65536, size)))
    const sum = await sha256(bytes)
    await file.send(bytes)
    return sum
  }
  sb.startCamera = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240}, audio: false})
    await Promise.all(room.addStream(stream))
    return stream.getVideoTracks().length
  }
  // selectedPair reports the candidate pair the connection to peerId is using.
  sb.selectedPair = async peerId => {
    const pc = room.getPeers()[peerId]
    if (!pc) return null
    const stats = await pc.getStats()
    const byId = new Map()
    stats.forEach(s => byId.set(s.id, s))
    let pair = null
    stats.forEach(s => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId)
    })
    if (!pair) stats.forEach(s => { if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s })
    if (!pair) return null
    const pick = c => c && {candidateType: c.candidateType, address: c.address, port: c.port, protocol: c.protocol,
      relayProtocol: c.relayProtocol, url: c.url}
    return {state: pair.state, local: pick(byId.get(pair.localCandidateId)), remote: pick(byId.get(pair.remoteCandidateId)),
      bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived}
  }
  // videoFrom reports what arrived from peerId's camera: decoded frames and picture size.
  sb.videoFrom = async peerId => {
    const v = sb.streams[peerId]
    const pc = room.getPeers()[peerId]
    let framesDecoded = 0
    if (pc) (await pc.getStats()).forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded += s.framesDecoded || 0 })
    return {framesDecoded, width: v?.videoWidth || 0, height: v?.videoHeight || 0}
  }
  sb.ready = true
  log('joined as', selfId)
}

start().catch(e => { sb.errors.push(String(e?.stack || e)); log('error', e) })
