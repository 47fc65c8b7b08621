// Package e2e proves the suite with real clients: headless Debian Chromium, driven by
// playwright-core, runs pages that use trystero from npm (@trystero-p2p/torrent) to find each
// other through our tracker and talk through turnd with credentials from credapi. Every
// scenario builds its own fresh daemons (the real binaries, on 127.0.0.1 with ephemeral
// ports). cmd/probe is exercised against the same daemons.
//
// Needs node, /usr/bin/chromium and `npm ci --ignore-scripts` in this directory (.ci/run does
// all three); without them the tests skip, except under CI=true, where they fail.
package e2e
