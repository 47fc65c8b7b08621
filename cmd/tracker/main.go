// Command tracker is Switchboard's WebTorrent-compatible WebSocket tracker.
package main

import (
	"os"

	"github.com/switchboard-p2p/switchboard/pkg/daemon"
	"github.com/switchboard-p2p/switchboard/pkg/tracker"
)

func main() {
	spec := daemon.Spec[tracker.Config]{Name: "tracker", Defaults: tracker.DefaultConfig(), Run: tracker.Run}
	os.Exit(daemon.Main(spec, os.Args[1:], os.Stdout, os.Stderr))
}
