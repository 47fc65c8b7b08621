// The reference WebTorrent tracker (bittorrent-tracker 11.2.3), ws only, on loopback.
// Its CLI cannot start here (the client half needs a native module that --ignore-scripts
// skips), so this imports the server half directly.
//
//   node server.mjs [port]        port: argument, else $PORT, else 0 (any free port)
//   $INTERVAL  announce interval the ws reply carries, in seconds (default 120, as the reference)
//   $HOST      listen address (default 127.0.0.1)
//
// Prints "listening ws://HOST:PORT" once bound, so a harness can read the port.
import Server from 'bittorrent-tracker/server'

const port = Number(process.argv[2] ?? process.env.PORT ?? 0)
const host = process.env.HOST || '127.0.0.1'
const intervalS = Number(process.env.INTERVAL || 120)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`bad port ${process.argv[2] ?? process.env.PORT}: want 0-65535`)
  process.exit(2)
}
if (!(intervalS > 0)) {
  console.error(`bad INTERVAL ${process.env.INTERVAL}: want seconds > 0`)
  process.exit(2)
}

// The ws reply carries ceil(interval_ms / 1000 / 5), so scale up by 5.
const server = new Server({ http: false, udp: false, ws: true, stats: true, interval: intervalS * 5 * 1000 })
server.on('error', (err) => console.error('ERROR', err.message))
// Warnings (answer to an unknown peer, ...) are normal under test; print only when asked.
if (process.env.VERBOSE) server.on('warning', (err) => console.error('WARNING', err.message))

server.listen(port, host, () => {
  const addr = server.ws.address?.() ?? server.http.address()
  console.log(`listening ws://${host}:${addr.port}`)
})

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref() // open sockets must not hold it up
  })
}
