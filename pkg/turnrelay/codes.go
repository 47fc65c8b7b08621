package turnrelay

import "encoding/binary"

// forbidChannelBind turns pion's answer to a ChannelBind whose peer our policy refused
// from 401 Unauthorized into 403 Forbidden, in place. RFC 8656 §12 answers a refused peer
// with 403 (as pion does for CreatePermission); a 401 makes clients re-authenticate and
// retry. The policy answer is recognisable: a ChannelBind error response whose only
// attribute is ERROR-CODE 401 (an authentication challenge always carries NONCE and REALM),
// so no MESSAGE-INTEGRITY or FINGERPRINT covers the bytes we change.
func forbidChannelBind(b []byte) {
	// 0x0119 = ChannelBind error response; one 8-byte ERROR-CODE attribute (no reason text).
	if len(b) != 28 || b[0] != 0x01 || b[1] != 0x19 || binary.BigEndian.Uint16(b[2:]) != 8 {
		return
	}
	if binary.BigEndian.Uint16(b[20:]) != 0x0009 || binary.BigEndian.Uint16(b[22:]) != 4 {
		return
	}
	if b[26] == 4 && b[27] == 1 {
		b[27] = 3
	}
}

// Write is pion's path to TCP and TLS clients.
func (c *frameConn) Write(p []byte) (int, error) {
	if c.data.Load() {
		c.lastWrite.Store(nanotime())
		return c.Conn.Write(p)
	}
	forbidChannelBind(p)
	if r := c.chal.replacement(p, c.l.auth.realm); r != nil {
		if _, err := c.Conn.Write(r); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.fixResponse(p)
	if !isConnectionBindSuccess(p) {
		return c.Conn.Write(p)
	}
	signed := c.signBindSuccess(p)
	if signed == nil {
		signed = p
	}
	if _, err := c.Conn.Write(signed); err != nil {
		return 0, err
	}
	// pion starts copying between this connection and the peer once this returns.
	c.lastWrite.Store(nanotime())
	c.data.Store(true)
	return len(p), nil
}
