// Package interop proves that credentials issued by credapi are accepted by real TURN servers:
// coturn's turnserver (Debian coturn, use-auth-secret) and Switchboard's own turnd, each
// driven by a pion/turn client that allocates a relay and echoes data through it. Only
// loopback traffic; outside tools are required through internal/testtool.
package interop
