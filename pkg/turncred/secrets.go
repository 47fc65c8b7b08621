package turncred

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Secrets is the live, rotatable list of shared secrets, newest first. It is safe for
// concurrent use; Reload swaps the whole list atomically.
type Secrets struct {
	inline []string
	file   string
	list   atomic.Pointer[[][]byte]
	// modTime and size of the file when last read, to notice edits without inotify.
	stamp atomic.Pointer[fileStamp]
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewSecrets loads secrets from the inline list and, when file is set, from the file (one
// per line, newest first, blank lines and # comments ignored). File secrets come first.
func NewSecrets(inline []string, file string) (*Secrets, error) {
	s := &Secrets{inline: inline, file: file}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Static returns Secrets over a fixed list; for tests and tools.
func Static(secrets ...string) *Secrets {
	s := &Secrets{inline: secrets}
	l := toBytes(secrets)
	s.list.Store(&l)
	return s
}

// Reload re-reads the file. On error the previous secrets stay in force. The error never
// contains a secret.
func (s *Secrets) Reload() error {
	all := []string{}
	if s.file != "" {
		st, err := os.Stat(s.file)
		if err != nil {
			return fmt.Errorf("auth.secrets_file %s: %w", s.file, err)
		}
		data, err := os.ReadFile(s.file)
		if err != nil {
			return fmt.Errorf("auth.secrets_file %s: %w", s.file, err)
		}
		fromFile, err := ParseSecretsFile(data)
		if err != nil {
			return fmt.Errorf("auth.secrets_file %s: %w", s.file, err)
		}
		all = append(all, fromFile...)
		s.stamp.Store(&fileStamp{mod: st.ModTime(), size: st.Size()})
	}
	all = append(all, s.inline...)
	if err := CheckSecrets(all); err != nil {
		return err
	}
	l := toBytes(all)
	s.list.Store(&l)
	return nil
}

// ParseSecretsFile reads one secret per line; blank lines and lines starting with # are skipped.
func ParseSecretsFile(data []byte) ([]string, error) {
	out := []string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckSecrets requires at least one secret and every secret to be MinSecretBytes long. The
// error names the position, never the secret.
func CheckSecrets(secrets []string) error {
	if len(secrets) == 0 {
		return fmt.Errorf("no shared secret: set auth.secrets or auth.secrets_file (generate one with: openssl rand -base64 48)")
	}
	for i, sec := range secrets {
		if len(sec) < MinSecretBytes {
			return fmt.Errorf("secret #%d is %d bytes: every secret must be at least %d bytes (generate one with: openssl rand -base64 48)", i+1, len(sec), MinSecretBytes)
		}
	}
	return nil
}

// Count is how many secrets are in force (safe to log and export).
func (s *Secrets) Count() int { return len(s.current()) }

func (s *Secrets) current() [][]byte {
	if p := s.list.Load(); p != nil {
		return *p
	}
	return nil
}

// Changed reports whether the secrets file's size or modification time moved since the last read.
func (s *Secrets) Changed() bool {
	if s.file == "" {
		return false
	}
	st, err := os.Stat(s.file)
	if err != nil {
		return false
	}
	old := s.stamp.Load()
	return old == nil || !st.ModTime().Equal(old.mod) || st.Size() != old.size
}

// Watch reloads the file when it changes (polled every interval, which also catches the atomic
// symlink swaps Kubernetes uses for mounted Secrets) and whenever reload delivers a value
// (SIGHUP). It returns when ctx ends.
func Watch[T any](ctx context.Context, s *Secrets, interval time.Duration, reload <-chan T, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			s.reloadAndLog(log, "signal")
		case <-t.C:
			if s.Changed() {
				s.reloadAndLog(log, "file changed")
			}
		}
	}
}

func (s *Secrets) reloadAndLog(log *slog.Logger, why string) {
	if err := s.Reload(); err != nil {
		log.Error("reloading secrets failed; keeping the previous ones", "trigger", why, "err", err)
		return
	}
	log.Info("secrets reloaded", "trigger", why, "count", s.Count())
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
