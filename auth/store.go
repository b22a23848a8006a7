package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// record is one entry of oauth_tokens.json. The first five fields are the
// claude-code-mux shape (it needs all of them, enterprise_url may be null);
// the rest are optional extras claude-code-mux ignores.
type record struct {
	ProviderID    string    `json:"provider_id"`
	AccessToken   string    `json:"access_token"`
	RefreshToken  string    `json:"refresh_token"`
	ExpiresAt     time.Time `json:"expires_at"`
	EnterpriseURL *string   `json:"enterprise_url"`

	// Email is the account's email address when the token response had one.
	Email string `json:"account_email,omitempty"`
	// APIKey is the key a console login created; when set, it is the
	// credential sent upstream (x-api-key) instead of the access token.
	APIKey string `json:"api_key,omitempty"`
	// LastRefreshError is the last refresh failure in words, so that
	// `ccmux status` in another process can show it; "" after a success.
	LastRefreshError string `json:"last_refresh_error,omitempty"`
}

// ErrCorruptStore is wrapped by the error reporting that the token store
// was not valid JSON and was moved aside.
var ErrCorruptStore = errors.New("token store is not valid JSON")

// Store is the token store file, ~/.claude-code-mux/oauth_tokens.json, shared
// with claude-code-mux. Writes are atomic and serialised across processes by
// a lock file next to it (oauth_tokens.json.lock).
type Store struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex // serialises this process's lock holders so they do not poll each other
	now  func() time.Time

	cacheMu    sync.Mutex
	cached     fs.FileInfo // the file cachedRecs was decoded from
	cachedRecs map[string]record
}

// NewStore returns the store at path (usually config.TokenPath()). Nothing
// is read or created until it is used.
func NewStore(path string) *Store {
	return &Store{path: path, log: slog.Default(), now: time.Now}
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

func (s *Store) lockPath() string { return s.path + ".lock" }

// lock takes the cross-process lock, waiting until ctx is done. The returned
// function releases it.
func (s *Store) lock(ctx context.Context) (func(), error) {
	s.mu.Lock()
	if err := s.ensureDir(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	f, err := os.OpenFile(s.lockPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("opening the token store lock %s: %w", s.lockPath(), err)
	}
	wait := 5 * time.Millisecond
	for {
		busy, err := tryLock(f)
		if err == nil && !busy {
			break
		}
		if err != nil {
			f.Close()
			s.mu.Unlock()
			return nil, fmt.Errorf("locking the token store %s: %w", s.lockPath(), err)
		}
		// Another process holds it (typically for one token request):
		// poll, backing off, until it lets go or we are cancelled.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			f.Close()
			s.mu.Unlock()
			return nil, fmt.Errorf("waiting for the token store lock %s: %w", s.lockPath(), ctx.Err())
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
	return func() {
		unlock(f)
		f.Close()
		s.mu.Unlock()
	}, nil
}

// ensureDir creates the store's directory 0700, or tightens it if looser.
func (s *Store) ensureDir() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the token store directory %s: %w", dir, err)
	}
	return s.fixMode(dir, 0o700)
}

// fixMode tightens path to want when group or others have any access.
func (s *Store) fixMode(path string, want fs.FileMode) error {
	if !checkPerms {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, want); err != nil {
		return fmt.Errorf("%s is readable by other users (mode %04o) and could not be changed to %04o: %w", path, fi.Mode().Perm(), want, err)
	}
	s.log.Warn("token store permissions were too open; fixed", "path", path, "was", fmt.Sprintf("%04o", fi.Mode().Perm()), "now", fmt.Sprintf("%04o", want))
	return nil
}

// read returns the stored records, without the lock (writes are atomic, so a
// reader sees the old or the new file). A missing or empty file is an empty
// store. A corrupt file is moved aside under the lock and reported as an
// error wrapping ErrCorruptStore, with an empty store.
func (s *Store) read(ctx context.Context) (map[string]record, error) {
	recs, err := s.readFile()
	if !errors.Is(err, ErrCorruptStore) {
		return recs, err
	}
	unlock, lerr := s.lock(ctx)
	if lerr != nil {
		return nil, lerr
	}
	defer unlock()
	return s.readLocked()
}

// readLocked is read for a caller holding the lock: it moves a corrupt file
// aside itself.
func (s *Store) readLocked() (map[string]record, error) {
	recs, err := s.readFile()
	if !errors.Is(err, ErrCorruptStore) {
		return recs, err
	}
	aside := fmt.Sprintf("%s.corrupt-%s", s.path, s.now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(s.path, aside); rerr != nil {
		return nil, fmt.Errorf("%w; moving it aside to %s failed: %v", err, aside, rerr)
	}
	s.log.Warn("token store was not valid JSON; moved it aside, sign in again", "path", s.path, "moved_to", aside)
	return map[string]record{}, fmt.Errorf("%w; moved it to %s — sign in again with `ccmux login`", err, aside)
}

// readFile reads and decodes the file. The proxy asks for a credential on
// every request, so the decoded records are kept and reused while a stat
// shows the same file (rename makes every write of ours a new file).
func (s *Store) readFile() (map[string]record, error) {
	if fi, err := os.Stat(s.path); err == nil {
		s.cacheMu.Lock()
		hit := s.cached != nil && os.SameFile(fi, s.cached) && fi.ModTime().Equal(s.cached.ModTime()) &&
			fi.Size() == s.cached.Size() && fi.Mode() == s.cached.Mode()
		recs := maps.Clone(s.cachedRecs)
		s.cacheMu.Unlock()
		if hit {
			return recs, nil
		}
	}
	if err := s.fixMode(filepath.Dir(s.path), 0o700); err != nil {
		return nil, err
	}
	if err := s.fixMode(s.path, 0o600); err != nil {
		return nil, err
	}
	// Stat before reading: the content read is then at least as new as the
	// stat it is cached under.
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the token store %s: %w", s.path, err)
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the token store %s: %w", s.path, err)
	}
	recs := map[string]record{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &recs); err != nil {
			// Say where, never what: the bytes around the error may be a token.
			return nil, fmt.Errorf("%w: %s (%s)", ErrCorruptStore, s.path, jsonProblem(err))
		}
	}
	for id, r := range recs {
		if r.ProviderID == "" {
			r.ProviderID = id
			recs[id] = r
		}
	}
	s.cacheMu.Lock()
	s.cached, s.cachedRecs = fi, maps.Clone(recs)
	s.cacheMu.Unlock()
	return recs, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s should be a %s", typ.Field, typ.Type)
	default:
		var terr *time.ParseError
		if errors.As(err, &terr) {
			return "expires_at is not an RFC 3339 time"
		}
		return "unexpected content"
	}
}

// beforeRename, when set by tests, runs after the temporary file is written
// and synced and before it replaces the store (where a crash would hit).
var beforeRename func()

// writeLocked replaces the store with recs atomically: temporary file in the
// same directory, fsync, rename, fsync of the directory. The caller holds the lock.
func (s *Store) writeLocked(recs map[string]record) error {
	for id, r := range recs {
		r.ProviderID = id
		r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Second)
		recs[id] = r
	}
	data, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the token store: %w", err)
	}
	s.removeStaleTemps(filepath.Dir(s.path))
	if err := s.writeFileAtomic(s.path, append(data, '\n')); err != nil {
		return fmt.Errorf("writing the token store %s: %w", s.path, err)
	}
	return nil
}

// writeFileAtomic replaces path with data, mode 0600, so that a crash
// leaves the old file or the new one, never half of one: temporary file in
// the same directory, fsync, rename, fsync of the directory.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && checkPerms {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if beforeRename != nil {
		beforeRename()
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	if err := syncDir(dir); err != nil {
		s.log.Warn("could not sync the directory", "path", dir, "err", err)
	}
	return nil
}

// removeStaleTemps deletes temporary files a crashed writer left behind; the
// caller holds the lock, so no live writer owns one.
func (s *Store) removeStaleTemps(dir string) {
	prefix := "." + filepath.Base(s.path) + ".tmp-"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// update runs fn on the records under the lock and writes them back when fn
// reports a change. A corrupt file is moved aside (with a warning) and fn
// starts from an empty store.
func (s *Store) update(ctx context.Context, fn func(recs map[string]record) (changed bool, err error)) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := s.readLocked()
	if err != nil && !errors.Is(err, ErrCorruptStore) {
		return err
	}
	changed, err := fn(recs)
	if err != nil || !changed {
		return err
	}
	return s.writeLocked(recs)
}
