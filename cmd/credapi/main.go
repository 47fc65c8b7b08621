// Command credapi hands browsers ICE servers and short-lived TURN credentials; see
// configs/credapi.yaml and pkg/credapi.
package main

import (
	"os"

	"github.com/switchboard-p2p/switchboard/pkg/credapi"
	"github.com/switchboard-p2p/switchboard/pkg/daemon"
)

func main() {
	os.Exit(daemon.Main(credapi.Spec(), os.Args[1:], os.Stdout, os.Stderr))
}
