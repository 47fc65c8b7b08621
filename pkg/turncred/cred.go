// Package turncred mints and verifies TURN REST API credentials (draft-uberti-behave-turn-rest):
// username "<unix-expiry>[:<id>]", password = base64(HMAC-SHA1(secret, username)). It is the one
// place turnd and credapi share, so both always agree on the scheme and on the secrets.
package turncred

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST API and every client specify.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinSecretBytes is the shortest secret accepted: shorter HMAC keys are guessable offline from
// a single captured credential.
const MinSecretBytes = 32

// Errors returned by Verify; callers count refusals by these.
var (
	// ErrMalformed means the username is not "<expiry>" or "<expiry>:<id>".
	ErrMalformed = errors.New("turncred: username is not <unix-expiry>:<id>")
	// ErrExpired means the expiry in the username has passed.
	ErrExpired = errors.New("turncred: credential expired")
	// ErrNoSecret means no secret is configured.
	ErrNoSecret = errors.New("turncred: no secret configured")
)

// Password returns the TURN REST password for username under secret.
func Password(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Username builds "<expiry>:<id>", or "<expiry>" when id is empty.
func Username(expiry time.Time, id string) string {
	ts := strconv.FormatInt(expiry.Unix(), 10)
	if id == "" {
		return ts
	}
	return ts + ":" + id
}

// ParseUsername splits a TURN REST username into its expiry and id.
func ParseUsername(username string) (expiry time.Time, id string, err error) {
	ts, id, _ := strings.Cut(username, ":")
	n, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil || n <= 0 || len(ts) > 12 {
		return time.Time{}, "", ErrMalformed
	}
	return time.Unix(n, 0), id, nil
}

// Credential is what a client is handed.
type Credential struct {
	Username string
	Password string
	Expires  time.Time
}

// Mint issues a credential valid for ttl from now, signed with the newest secret.
func (s *Secrets) Mint(now time.Time, ttl time.Duration, id string) (Credential, error) {
	secrets := s.current()
	if len(secrets) == 0 {
		return Credential{}, ErrNoSecret
	}
	exp := now.Add(ttl).Truncate(time.Second)
	u := Username(exp, id)
	return Credential{Username: u, Password: Password(secrets[0], u), Expires: exp}, nil
}

// Passwords returns the HMAC keys a TURN server must try for username: the password derived with
// every configured secret, newest first. The caller (pion's AuthHandler) compares the
// MESSAGE-INTEGRITY with each, which is how rotation keeps older credentials working.
func (s *Secrets) Passwords(username string) ([]string, error) {
	secrets := s.current()
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	out := make([]string, len(secrets))
	for i, sec := range secrets {
		out[i] = Password(sec, username)
	}
	return out, nil
}

// Verify checks username/password against every secret and the expiry (at now).
func (s *Secrets) Verify(now time.Time, username, password string) error {
	exp, _, err := ParseUsername(username)
	if err != nil {
		return err
	}
	if !now.Before(exp) {
		return ErrExpired
	}
	pws, err := s.Passwords(username)
	if err != nil {
		return err
	}
	for _, pw := range pws {
		if hmac.Equal([]byte(pw), []byte(password)) {
			return nil
		}
	}
	return fmt.Errorf("turncred: password does not match any configured secret")
}
