// Switchboard self-test: plain JavaScript, no build step, no dependencies. It checks what a
// browser chat app (trystero, ChitChatter) needs from the deployment serving this page.
// Results are also kept on window.selftest for automated checks (test/e2e).
const $ = id => document.getElementById(id)
const state = window.selftest = {
  config: null, gather: {done: false, relayFrom: [], noRelayFrom: [], candidates: [], errors: []},
  tracker: {done: false, ok: false}, chat: {connected: false, via: null, received: [], sent: []},
}

const setStatus = (id, text, ok) => {
  const el = $(id)
  el.textContent = text
  el.className = 'status ' + (ok === true ? 'ok' : ok === false ? 'fail' : '')
}
const row = (tbody, cells, cls) => {
  const tr = document.createElement('tr')
  if (cls) tr.className = cls
  for (const c of cells) {
    const td = document.createElement('td')
    td.textContent = c ?? ''
    tr.append(td)
  }
  $(tbody).querySelector('tbody').append(tr)
}
const urlsOf = s => [].concat(s.urls)
const randomId = () => {
  const abc = '0123456789abcdefghijklmnopqrstuvwxyz'
  return Array.from(crypto.getRandomValues(new Uint8Array(20)), b => abc[b % abc.length]).join('')
}
const hex = buf => Array.from(new Uint8Array(buf), b => b.toString(16).padStart(2, '0')).join('')

// waitGathering resolves when ICE gathering completes or after ms (trystero waits 15 s).
const waitGathering = (pc, ms) => new Promise(resolve => {
  if (pc.iceGatheringState === 'complete') return resolve(true)
  const t = setTimeout(() => resolve(false), ms)
  pc.addEventListener('icegatheringstatechange', () => {
    if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(true) }
  })
})

// 1. The configuration, from the credapi that serves this page.
async function loadConfig() {
  const url = new URL('../v1/client-config', location.href)
  // When credapi requires API keys, open the page as /selftest/#key=<key>: a fragment never
  // reaches a server or a log.
  const key = new URLSearchParams(location.hash.slice(1)).get('key')
  const headers = {Accept: 'application/json', ...(key ? {Authorization: 'Bearer ' + key} : {})}
  const res = await fetch(url, {headers})
  const body = await res.json().catch(() => ({}))
  if (!res.ok) {
    const hint = res.status === 401 || res.status === 403 ? ' (if credapi requires API keys, open this page as #key=<key>)' : ''
    throw new Error(`${url.pathname} answered ${res.status}: ${body.error || ''} ${body.message || ''}${hint}`)
  }
  if (!Array.isArray(body.iceServers)) throw new Error(`${url.pathname} has no iceServers`)
  for (const s of body.iceServers) {
    row('config-servers', [urlsOf(s).join(' '), s.username, s.credential ? `(${s.credential.length} characters)` : ''])
  }
  const turn = body.iceServers.flatMap(urlsOf).filter(u => /^turns?:/.test(u))
  setStatus('config-status', `${body.iceServers.length} ICE server entries, ${turn.length} TURN URIs, ` +
    `credential valid for ${body.ttl} s, trackers: ${(body.trackers || []).join(', ') || 'none configured (credapi trackers key)'}`,
    turn.length > 0)
  state.config = body
  return body
}

// 2. Gather candidates with every server; a relay candidate must come from each TURN URI.
async function gather(iceServers) {
  $('gather-candidates').querySelector('tbody').replaceChildren()
  $('gather-errors').replaceChildren()
  Object.assign(state.gather, {done: false, relayFrom: [], noRelayFrom: [], candidates: [], errors: []})
  setStatus('gather-status', 'gathering…')
  const pc = new RTCPeerConnection({iceServers, iceTransportPolicy: 'all'})
  const start = performance.now()
  pc.addEventListener('icecandidate', e => {
    if (!e.candidate || !e.candidate.candidate) return
    const c = e.candidate
    const cand = {type: c.type, protocol: c.protocol, address: c.address, port: c.port, url: c.url || e.url || '',
      ms: Math.round(performance.now() - start)}
    state.gather.candidates.push(cand)
  })
  pc.addEventListener('icecandidateerror', e => {
    const err = `${e.url}: ${e.errorCode} ${e.errorText}`
    state.gather.errors.push(err)
    const li = document.createElement('li')
    li.textContent = err
    li.className = 'fail'
    $('gather-errors').append(li)
  })
  pc.createDataChannel('selftest')
  await pc.setLocalDescription(await pc.createOffer())
  const complete = await waitGathering(pc, 15000)
  // Which server a candidate came from: Chromium leaves the event's url empty but reports it
  // in the local-candidate stats.
  const fromStats = new Map()
  ;(await pc.getStats()).forEach(s => {
    if (s.type === 'local-candidate' && s.url) fromStats.set(`${s.address} ${s.port} ${s.protocol}`, s.url)
  })
  pc.close()
  for (const c of state.gather.candidates) {
    c.url ||= fromStats.get(`${c.address} ${c.port} ${c.protocol}`) || ''
    row('gather-candidates', [c.ms, c.type, c.protocol, c.address, c.port, c.url], c.type === 'relay' ? 'relay' : '')
  }
  const turnURLs = iceServers.flatMap(urlsOf).filter(u => /^turns?:/.test(u))
  const relayURLs = new Set(state.gather.candidates.filter(c => c.type === 'relay').map(c => c.url))
  state.gather.relayFrom = turnURLs.filter(u => relayURLs.has(u))
  state.gather.noRelayFrom = turnURLs.filter(u => !relayURLs.has(u))
  state.gather.done = true
  const took = Math.round(performance.now() - start)
  if (state.gather.noRelayFrom.length === 0 && state.gather.relayFrom.length > 0) {
    setStatus('gather-status', `a relay candidate from every TURN URI (${state.gather.relayFrom.join(', ')}) in ${took} ms`, true)
  } else {
    setStatus('gather-status', `no relay candidate from: ${state.gather.noRelayFrom.join(', ') || 'any TURN URI'}` +
      (complete ? '' : ' (gathering did not finish in 15 s: trystero would wait that long before every offer)') +
      '. Check the TURN address, its ports and that turnd and credapi share a secret.', false)
  }
}

// 3. One announce to the tracker and the time to its answer.
function announceOnce(url) {
  return new Promise(resolve => {
    const start = performance.now()
    let ws
    const done = (ok, text) => { try { ws?.close() } catch { /* closing anyway */ } resolve({ok, text}) }
    const timer = setTimeout(() => done(false, 'no answer within 10 s'), 10000)
    try { ws = new WebSocket(url) } catch (e) { clearTimeout(timer); return done(false, String(e.message || e)) }
    ws.onerror = () => { clearTimeout(timer); done(false, 'the WebSocket failed (wrong URL, TLS or Origin not allowed by the tracker?)') }
    ws.onopen = () => ws.send(JSON.stringify({action: 'announce', info_hash: randomId(), peer_id: randomId(), numwant: 0, offers: []}))
    ws.onmessage = e => {
      let m
      try { m = JSON.parse(e.data) } catch { return }
      clearTimeout(timer)
      if (m['failure reason']) return done(false, `the tracker refused: ${m['failure reason']}`)
      if (m.action === 'announce' && m.interval) return done(true, `announce answered in ${Math.round(performance.now() - start)} ms (connect included), interval ${m.interval} s`)
    }
  })
}

async function testTracker() {
  const url = $('tracker-url').value.trim()
  if (!url) return setStatus('tracker-status', 'no tracker URL: enter one (credapi lists none in its trackers key)', false)
  setStatus('tracker-status', 'announcing…')
  const r = await announceOnce(url)
  Object.assign(state.tracker, {done: true, ok: r.ok, text: r.text})
  setStatus('tracker-status', `${url}: ${r.text}`, r.ok)
}

// 4. Two tabs: WebTorrent tracker signalling (as trystero does, without encryption) and a data
// channel forced through the relay. The tab with the smaller peer id offers, the other answers.
function startChat(iceServers) {
  const hash = new URLSearchParams(location.hash.slice(1))
  let room = hash.get('room')
  if (!room) {
    room = randomId().slice(0, 10)
    hash.set('room', room)
    history.replaceState(null, '', '#' + hash)
  }
  $('chat-room').textContent = room
  $('chat-link').href = location.href
  const selfId = randomId()
  const rtc = {iceServers, iceTransportPolicy: 'relay'}
  const offers = new Map() // offer_id → RTCPeerConnection waiting for an answer
  let ws, infoHash, channel = null, timer

  const log = (who, text) => {
    const li = document.createElement('li')
    li.textContent = `${who}: ${text}`
    $('chat-log').append(li)
  }
  const send = m => ws?.readyState === WebSocket.OPEN && ws.send(JSON.stringify(m))

  const useChannel = (dc, pc) => {
    dc.onopen = async () => {
      channel = dc
      for (const [id, other] of offers) if (other !== pc) { other.close(); offers.delete(id) }
      let via = 'unknown'
      const stats = await pc.getStats()
      stats.forEach(s => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId)
          const local = pair && stats.get(pair.localCandidateId)
          if (local) via = `${local.candidateType} ${local.address}:${local.port} from ${local.url || 'the TURN server'}`
        }
      })
      Object.assign(state.chat, {connected: true, via})
      setStatus('chat-status', `connected to the other tab via ${via}`, true)
      $('chat-input').disabled = $('chat-send').disabled = false
    }
    dc.onmessage = e => { state.chat.received.push(String(e.data)); log('them', e.data) }
    dc.onclose = () => {
      if (channel === dc) channel = null
      state.chat.connected = false
      setStatus('chat-status', 'the other tab left; waiting for another one…')
      $('chat-input').disabled = $('chat-send').disabled = true
    }
  }

  const gathered = async pc => {
    await waitGathering(pc, 10000)
    return pc.localDescription.sdp
  }

  async function announce() {
    if (channel) return send({action: 'announce', info_hash: infoHash, peer_id: selfId, numwant: 0, offers: []})
    // Keep at most two offers open: each one holds TURN allocations.
    while (offers.size >= 2) {
      const [id, pc] = offers.entries().next().value
      pc.close()
      offers.delete(id)
    }
    const pc = new RTCPeerConnection(rtc)
    useChannel(pc.createDataChannel('chat'), pc)
    await pc.setLocalDescription(await pc.createOffer())
    const offerId = randomId()
    offers.set(offerId, pc)
    send({action: 'announce', info_hash: infoHash, peer_id: selfId, numwant: 1,
      offers: [{offer_id: offerId, offer: {type: 'offer', sdp: await gathered(pc)}}]})
  }

  async function onMessage(e) {
    let m
    try { m = JSON.parse(e.data) } catch { return }
    if (m['failure reason']) return setStatus('chat-status', `the tracker refused: ${m['failure reason']}`, false)
    if (m.info_hash !== infoHash || m.peer_id === selfId || channel) return
    if (m.offer && m.peer_id < selfId) {
      const pc = new RTCPeerConnection(rtc)
      pc.ondatachannel = ev => useChannel(ev.channel, pc)
      await pc.setRemoteDescription(m.offer)
      await pc.setLocalDescription(await pc.createAnswer())
      send({action: 'announce', info_hash: infoHash, peer_id: selfId, to_peer_id: m.peer_id, offer_id: m.offer_id,
        answer: {type: 'answer', sdp: await gathered(pc)}})
      setStatus('chat-status', 'answered the other tab; connecting through the relay…')
    } else if (m.answer && offers.has(m.offer_id)) {
      await offers.get(m.offer_id).setRemoteDescription(m.answer)
      setStatus('chat-status', 'the other tab answered; connecting through the relay…')
    }
  }

  function connect() {
    const url = $('tracker-url').value.trim()
    if (!url) return setStatus('chat-status', 'no tracker URL', false)
    ws = new WebSocket(url)
    ws.onopen = () => {
      setStatus('chat-status', 'in the room; waiting for a second tab…')
      announce()
      clearInterval(timer)
      timer = setInterval(announce, 5000)
    }
    ws.onmessage = e => { onMessage(e).catch(err => setStatus('chat-status', String(err), false)) }
    ws.onclose = () => {
      clearInterval(timer)
      if (!channel) setStatus('chat-status', 'the tracker connection closed; retrying in 3 s…', false)
      setTimeout(connect, 3000)
    }
  }

  $('chat-form').addEventListener('submit', ev => {
    ev.preventDefault()
    const text = $('chat-input').value
    if (!channel || !text) return
    channel.send(text)
    state.chat.sent.push(text)
    log('me', text)
    $('chat-input').value = ''
  })
  crypto.subtle.digest('SHA-1', new TextEncoder().encode('switchboard-selftest:' + room)).then(h => {
    infoHash = hex(h).slice(0, 20)
    connect()
  })
  // For automated checks: send without the form.
  state.chat.send = text => { channel.send(text); state.chat.sent.push(text); log('me', text) }
}

async function main() {
  let config
  try {
    config = await loadConfig()
  } catch (e) {
    setStatus('config-status', String(e.message || e), false)
    for (const id of ['gather-status', 'tracker-status', 'chat-status']) setStatus(id, 'skipped: no configuration', false)
    state.config = {error: String(e.message || e)}
    return
  }
  $('tracker-url').value = (config.trackers || [])[0] || ''
  $('tracker-test').addEventListener('click', testTracker)
  $('gather-again').addEventListener('click', () => gather(config.iceServers))
  await Promise.all([gather(config.iceServers), testTracker()])
  startChat(config.iceServers)
}

main()
