// Command nodeaddr is the init container of turnd's hostNetwork DaemonSet: it reads this
// node's ExternalIP from the Kubernetes API (pods only see the InternalIP as status.hostIP)
// and writes it to a file turnd advertises (relay.public_ip_file).
//
//	nodeaddr --out=/run/switchboard/public_ip [--family=ipv4|ipv6 | --same-family-as=IP]
//	         [--internal-fallback] [--allow-private]
//
// It needs NODE_NAME (downward API spec.nodeName) and a service-account token allowed to get
// nodes. Exit 0: written; 1: no address or the API refused (the message says what to set);
// 2: bad flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/nodeaddr"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nodeaddr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg nodeaddr.Config
	var pref nodeaddr.Preference
	node := fs.String("node", os.Getenv("NODE_NAME"), "node to read (default $NODE_NAME)")
	out := fs.String("out", "", "file to write the address to (required)")
	family := fs.String("family", "ipv4", "address family to advertise: ipv4 or ipv6")
	sameAs := fs.String("same-family-as", "", "advertise an address of this IP's family instead (the relay's bind address, e.g. the pod's status.hostIP); overrides --family")
	fs.BoolVar(&pref.InternalFallback, "internal-fallback", false, "use the InternalIP when the node has no usable ExternalIP")
	fs.BoolVar(&pref.AllowPrivate, "allow-private", false, "accept private and CGNAT addresses (clients on the same private network)")
	fs.StringVar(&cfg.Server, "api-server", "", "API server URL (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)")
	fs.StringVar(&cfg.TokenFile, "token-file", nodeaddr.ServiceAccountDir+"/token", "service-account token")
	fs.StringVar(&cfg.CAFile, "ca-file", nodeaddr.ServiceAccountDir+"/ca.crt", "cluster CA certificate (the only CA trusted)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long (transient API errors are retried until then)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "nodeaddr: unexpected argument %q (all options are flags; see -h)\n", fs.Arg(0))
		return 2
	}
	if *out == "" {
		_, _ = fmt.Fprintln(stderr, "nodeaddr: --out is required (the file turnd's relay.public_ip_file names)")
		return 2
	}
	fam, err := nodeaddr.ParseFamily(*family)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "nodeaddr: --family: %v\n", err)
		return 2
	}
	pref.Family = fam
	if *sameAs != "" {
		ip, err := netip.ParseAddr(*sameAs)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "nodeaddr: --same-family-as: %q is not an IP address\n", *sameAs)
			return 2
		}
		pref.Family = nodeaddr.IPv6
		if ip.Unmap().Is4() {
			pref.Family = nodeaddr.IPv4
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := nodeaddr.NewClient(cfg)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "nodeaddr: %v\n", err)
		return 1
	}
	addr, err := nodeaddr.Resolve(ctx, c, *node, pref, 0)
	if err == nil {
		err = nodeaddr.WriteFile(*out, addr)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "nodeaddr: %v\n", err)
		return 1
	}
	// The relay's own public address (it is in every allocation it hands out), not a client's.
	_, _ = fmt.Fprintf(stdout, "nodeaddr: node %s: advertising %s (written to %s)\n", *node, addr, *out)
	return 0
}
