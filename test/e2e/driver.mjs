// Drives headless Debian Chromium (never a downloaded browser) through one scenario of the
// browser tests and prints one JSON line with what the pages saw. The Go test (browser_test.go)
// starts the daemons, serves the pages, runs this script and asserts on its output.
// Usage: node driver.mjs '<json spec>'   spec: {scenario, pages: [url...], chromium, timeoutMs, ...}
import {chromium} from 'playwright-core'

const spec = JSON.parse(process.argv[2])
const deadline = Date.now() + (spec.timeoutMs || 60000)
const note = (...a) => console.error(new Date().toISOString(), ...a)

// Flags measured for trystero in headless Chromium on loopback: loopback ICE needs
// --allow-loopback-in-peer-connection; the fake camera needs the two media flags.
const browser = await chromium.launch({
  executablePath: spec.chromium || '/usr/bin/chromium',
  headless: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    // No name resolves: whatever Chromium might try on its own never leaves loopback.
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
})

const pages = []
async function open(url, name) {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  page.on('console', m => note(`[${name}] ${m.type()}: ${m.text()}`))
  page.on('pageerror', e => note(`[${name}] pageerror: ${e}`))
  await page.goto(url)
  await page.waitForFunction(() => window.sb && (window.sb.ready || window.sb.errors.length > 0), null, {timeout: left()})
  const errors = await page.evaluate(() => window.sb.errors)
  if (errors.length) throw new Error(`${name}: ${errors.join('; ')}`)
  const p = {name, page, id: await page.evaluate(() => window.sb.selfId)}
  pages.push(p)
  return p
}
const left = () => Math.max(1, deadline - Date.now())
const sb = (p, f, arg) => p.page.evaluate(f, arg)
// until waits for f(window.sb, arg) to hold in p, with a message naming what did not happen.
async function until(p, what, f, arg) {
  try {
    await p.page.waitForFunction(f, arg, {timeout: left(), polling: 100})
  } catch (e) {
    throw new Error(`${p.name}: ${what} did not happen in time (${e.message.split('\n')[0]})`)
  }
}
const seesPeer = (p, other) => until(p, `seeing peer ${other.name}`, id => window.sb.peers.includes(id), other.id)
async function exchangeTexts(a, b) {
  await sb(a, ([m, t]) => window.sb.sendText(m, t), [`hello from ${a.name}`, b.id])
  await sb(b, ([m, t]) => window.sb.sendText(m, t), [`hello from ${b.name}`, a.id])
  await until(b, `text from ${a.name}`, m => window.sb.texts.some(x => x.text === m), `hello from ${a.name}`)
  await until(a, `text from ${b.name}`, m => window.sb.texts.some(x => x.text === m), `hello from ${b.name}`)
}
async function ctl(path) {
  const res = await fetch(spec.control + path, {method: 'POST'})
  if (!res.ok) throw new Error(`control ${path}: ${res.status} ${await res.text()}`)
}

// openSelftest opens credapi's self-test page and waits for its first three checks.
async function openSelftest(url, name) {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  page.on('console', m => note(`[${name}] ${m.type()}: ${m.text()}`))
  page.on('pageerror', e => note(`[${name}] pageerror: ${e}`))
  await page.goto(url)
  const p = {name, page}
  pages.push(p)
  await until(p, 'the self-test checks', () => window.selftest?.config?.error || (window.selftest?.gather.done && window.selftest?.tracker.done), null)
  return p
}

const scenarios = {
  // credapi's self-test page in two tabs: relay candidates, tracker round trip, chat via relay.
  async selftest() {
    const a = await openSelftest(spec.pages[0], 'a')
    const b = await openSelftest(spec.pages[0], 'b')
    for (const p of [a, b]) await until(p, 'the chat connection', () => window.selftest.chat.connected, null)
    await a.page.evaluate(() => window.selftest.chat.send('ping from a'))
    await until(b, 'the message from a', () => window.selftest.chat.received.includes('ping from a'), null)
    await b.page.evaluate(() => window.selftest.chat.send('pong from b'))
    await until(a, 'the message from b', () => window.selftest.chat.received.includes('pong from b'), null)
    const report = p => p.page.evaluate(() => {
      const s = window.selftest
      return {relayFrom: s.gather.relayFrom, noRelayFrom: s.gather.noRelayFrom, gatherErrors: s.gather.errors,
        tracker: s.tracker, via: s.chat.via, statuses: [...document.querySelectorAll('.status')].map(e => e.className + ': ' + e.textContent)}
    })
    return {selftest: [await report(a), await report(b)]}
  },
  // Two peers: text both ways, a binary intact, and the candidate pairs both use.
  async pair() {
    const [a, b] = [await open(spec.pages[0], 'a'), await open(spec.pages[1], 'b')]
    await seesPeer(a, b)
    await seesPeer(b, a)
    await exchangeTexts(a, b)
    const started = Date.now()
    const sent = await sb(a, n => window.sb.sendBinary(n), spec.binaryBytes || 0)
    await until(b, 'the binary', n => window.sb.binaries.length > 0, null)
    const got = await sb(b, () => window.sb.binaries[0])
    return {sent, got, binaryMs: Date.now() - started,
      pairs: [await sb(a, id => window.sb.selectedPair(id), b.id), await sb(b, id => window.sb.selectedPair(id), a.id)]}
  },
  // N peers in one room: everyone sees everyone and hears everyone.
  async group() {
    const ps = []
    for (const [i, url] of spec.pages.entries()) ps.push(await open(url, `p${i}`))
    for (const p of ps) {
      await until(p, `seeing ${ps.length - 1} peers`, n => window.sb.peers.length >= n, ps.length - 1)
    }
    for (const p of ps) await sb(p, m => window.sb.sendText(m), `hello from ${p.name}`)
    for (const p of ps) {
      await until(p, `texts from all ${ps.length - 1} others`, n => new Set(window.sb.texts.map(t => t.from)).size >= n, ps.length - 1)
    }
    const pairs = []
    for (const p of ps) for (const q of ps) if (p !== q) pairs.push(await sb(p, id => window.sb.selectedPair(id), q.id))
    return {peers: await Promise.all(ps.map(p => sb(p, () => window.sb.peers.length))), pairs}
  },
  // A fake-camera video track from a arrives at b with frames decoded.
  async video() {
    const [a, b] = [await open(spec.pages[0], 'a'), await open(spec.pages[1], 'b')]
    await seesPeer(a, b)
    await seesPeer(b, a)
    await sb(a, () => window.sb.startCamera())
    await until(b, 'decoded video frames', id => {
      const v = window.sb.video[id]
      return v && v.framesDecoded >= 30 && v.width > 0
    }, a.id)
    return {video: await sb(b, id => window.sb.videoFrom(id), a.id), pairs: [await sb(b, id => window.sb.selectedPair(id), a.id)]}
  },
  // a's tracker connection is dropped (the tracker restarts); b joins afterwards and they meet.
  async rejoin() {
    const a = await open(spec.pages[0], 'a')
    await ctl('/restart-tracker')
    const b = await open(spec.pages[1], 'b')
    await seesPeer(a, b)
    await seesPeer(b, a)
    await exchangeTexts(a, b)
    return {pairs: [await sb(a, id => window.sb.selectedPair(id), b.id)]}
  },
  // Relay forced but turnd refuses loopback peers: SDP is exchanged, no connection forms.
  async refused() {
    const [a, b] = [await open(spec.pages[0], 'a'), await open(spec.pages[1], 'b')]
    // One side sees its connections fail (the other may never get past the offer): wait for
    // either page to report a failure, a join error or, wrongly, a peer.
    const settled = p => sb(p, () => (window.sb.pcStates.failed || 0) + window.sb.joinErrors.length + window.sb.peers.length)
    while ((await settled(a)) + (await settled(b)) === 0) {
      if (left() <= 1) throw new Error('neither page saw a connection fail or succeed in time')
      await new Promise(r => setTimeout(r, 200))
    }
    const report = p => sb(p, () => ({peers: window.sb.peers.length, joinErrors: window.sb.joinErrors, failed: window.sb.pcStates.failed || 0, states: window.sb.pcStates}))
    return {pages: [await report(a), await report(b)]}
  },
}

let out
try {
  const f = scenarios[spec.scenario]
  if (!f) throw new Error(`unknown scenario ${spec.scenario}`)
  out = {ok: true, ...await f()}
} catch (e) {
  out = {ok: false, error: String(e?.message || e)}
  for (const p of pages) {
    try {
      out[p.name] = await sb(p, () => ({peers: window.sb.peers, joinErrors: window.sb.joinErrors, errors: window.sb.errors, pcStates: window.sb.pcStates,
        texts: window.sb.texts.length, binaries: window.sb.binaries}))
    } catch { /* the page may be gone */ }
  }
}
await browser.close().catch(() => {})
process.stdout.write(JSON.stringify(out) + '\n')
