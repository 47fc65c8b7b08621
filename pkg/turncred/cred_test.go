package turncred

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPasswordContractVector(t *testing.T) {
	if got := Password([]byte("foobar"), "1599491771"); got != "Tpz/nKkyvX/vMSLKvL4sbtBt8Vs=" {
		t.Fatalf("Password = %q, want the contract's test vector", got)
	}
}

func TestParseUsername(t *testing.T) {
	tests := []struct {
		in     string
		exp    int64
		id     string
		wantOK bool
	}{
		{"1599491771", 1599491771, "", true},
		{"1599491771:alice", 1599491771, "alice", true},
		{"1599491771:a:b", 1599491771, "a:b", true},
		{"", 0, "", false},
		{"abc:alice", 0, "", false},
		{"-5:x", 0, "", false},
		{"0:x", 0, "", false},
		{"9999999999999999:x", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			exp, id, err := ParseUsername(tt.in)
			if (err == nil) != tt.wantOK {
				t.Fatalf("err = %v, want ok=%v", err, tt.wantOK)
			}
			if tt.wantOK && (exp.Unix() != tt.exp || id != tt.id) {
				t.Fatalf("got %d %q, want %d %q", exp.Unix(), id, tt.exp, tt.id)
			}
		})
	}
}

func TestMintVerifyRotationExpiry(t *testing.T) {
	oldSecret := strings.Repeat("o", 32)
	newSecret := strings.Repeat("n", 32)
	now := time.Unix(1_700_000_000, 0)
	before := Static(oldSecret)
	cred, err := before.Mint(now, time.Hour, "id1")
	if err != nil {
		t.Fatal(err)
	}
	rotated := Static(newSecret, oldSecret)
	tests := []struct {
		name    string
		s       *Secrets
		at      time.Time
		user    string
		pass    string
		wantErr error
		ok      bool
	}{
		{"fresh", before, now, cred.Username, cred.Password, nil, true},
		{"after rotation, old still valid", rotated, now.Add(time.Minute), cred.Username, cred.Password, nil, true},
		{"old secret dropped", Static(newSecret), now, cred.Username, cred.Password, nil, false},
		{"expired", rotated, now.Add(time.Hour), cred.Username, cred.Password, ErrExpired, false},
		{"wrong password", rotated, now, cred.Username, "x", nil, false},
		{"malformed", rotated, now, "nope", cred.Password, ErrMalformed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Verify(tt.at, tt.user, tt.pass)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify err = %v, want ok=%v", err, tt.ok)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	minted, _ := rotated.Mint(now, time.Hour, "")
	if minted.Password != Password([]byte(newSecret), minted.Username) {
		t.Fatal("Mint must sign with the newest secret")
	}
}

func TestSecretsFileReload(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secrets")
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	if err := os.WriteFile(f, []byte("# comment\n"+a+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewSecrets(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 || s.Changed() {
		t.Fatalf("count=%d changed=%v", s.Count(), s.Changed())
	}
	if err := os.WriteFile(f, []byte(b+"\n"+a+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !s.Changed() {
		t.Fatal("Changed() = false after the file grew")
	}
	if err := s.Reload(); err != nil || s.Count() != 2 {
		t.Fatalf("reload err=%v count=%d", err, s.Count())
	}
	if err := os.WriteFile(f, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.Reload()
	if err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("reload of a short secret: err=%v (must fail and never echo the secret)", err)
	}
	if s.Count() != 2 {
		t.Fatal("a failed reload must keep the previous secrets")
	}
}

func TestCheckSecrets(t *testing.T) {
	if CheckSecrets(nil) == nil {
		t.Fatal("no secrets must fail")
	}
	if CheckSecrets([]string{strings.Repeat("x", 31)}) == nil {
		t.Fatal("31-byte secret must fail")
	}
	if err := CheckSecrets([]string{strings.Repeat("x", 32)}); err != nil {
		t.Fatal(err)
	}
}
