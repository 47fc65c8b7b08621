// Command turnd is Switchboard's TURN relay; see configs/turnd.yaml for its settings.
package main

import (
	"os"

	"github.com/switchboard-p2p/switchboard/pkg/daemon"
	"github.com/switchboard-p2p/switchboard/pkg/turnrelay"
)

func main() {
	os.Exit(daemon.Main(turnrelay.Spec(), os.Args[1:], os.Stdout, os.Stderr))
}
