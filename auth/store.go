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
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"ccmux/internal/atomicfile"
	"ccmux/internal/safefile"
)

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

	// onLoad, when set, sees the records each time the file is decoded
	// anew (not from the cache); it must not change them.
	onLoad func(map[string]record)

	cacheMu    sync.Mutex
	cached     fs.FileInfo // the file cachedRecs was decoded from
	cachedRecs map[string]record
	// corrupt is the file last judged corrupt and the verdict: while a
	// stat shows the same file, reads (one per proxy request) fail at once
	// instead of waiting stableAfter again.
	corrupt    fs.FileInfo
	corruptErr *corruptError
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
	return s.fixMode(dir, 0o700, true)
}

// fixMode tightens path to want when group or others have any access. It
// never follows a symbolic link (its target may be anywhere) and only
// touches a directory when dir is set, a regular file otherwise.
func (s *Store) fixMode(path string, want fs.FileMode, dir bool) error {
	if !checkPerms {
		return nil
	}
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if fi.IsDir() != dir || !(fi.IsDir() || fi.Mode().IsRegular()) || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, want); err != nil {
		return fmt.Errorf("%s is readable by other users (mode %04o) and could not be changed to %04o: %w", path, fi.Mode().Perm(), want, err)
	}
	s.log.Warn("token store permissions were too open; fixed", "path", path, "was", fmt.Sprintf("%04o", fi.Mode().Perm()), "now", fmt.Sprintf("%04o", want))
	return nil
}

// Reading a file another program rewrites in place (claude-code-mux
// truncates and writes, without a lock) can see it half written: such a
// read is retried, backing off from firstReadRetry to lastReadRetry with
// jitter (so the retries do not fall into step with a writer's own pace),
// for up to maxReadRetry, and the file is judged corrupt (or, empty, judged
// empty) only when the same bytes were read again stableAfter after they
// were first seen. Many short retries, not a few long ones: each one can
// land in the middle of the next write.
const (
	firstReadRetry = 2 * time.Millisecond
	lastReadRetry  = 25 * time.Millisecond
	maxReadRetry   = 1500 * time.Millisecond
	// stableAfter is long enough that a writer the scheduler paused
	// between truncating and writing (a busy machine) is not mistaken for
	// an empty or corrupt file.
	stableAfter = 500 * time.Millisecond
)

// afterBadRead, when set by tests, runs after a read that did not parse,
// before the retry.
var afterBadRead func()

// read returns the stored records, without the lock (our writes are atomic,
// and a half-written file from another program is retried). A missing or
// empty file is an empty store. A file that stays invalid is reported with
// an error wrapping ErrCorruptStore and left where it is: only a write moves
// it aside.
func (s *Store) read(ctx context.Context) (map[string]record, error) {
	recs, err := s.readFile()
	if errors.Is(err, ErrCorruptStore) {
		return nil, fmt.Errorf("%w; signing in again (`ccmux login`) moves it aside and starts a new one", err)
	}
	return recs, err
}

// readLocked is read for a writer holding the lock: a corrupt file would
// be lost by the write, so it is moved aside first (under a name no earlier
// one has) and the write starts from an empty store.
func (s *Store) readLocked() (map[string]record, error) {
	recs, err := s.readFile()
	var ce *corruptError
	if !errors.As(err, &ce) {
		return recs, err
	}
	target, terr := s.target()
	if terr != nil {
		return nil, terr
	}
	aside, err2 := s.quarantine(target, ce)
	if err2 != nil {
		return nil, fmt.Errorf("%w; moving it aside failed: %v", err, err2)
	}
	if aside == "" { // it was rewritten meanwhile, and is fine now
		return s.readFile()
	}
	s.log.Warn("token store was not valid; moved it aside, sign in again", "path", s.path, "problem", ce.problem, "moved_to", aside)
	return map[string]record{}, fmt.Errorf("%w; moved it to %s — sign in again with `ccmux login`", err, aside)
}

// quarantine moves target (whose content was bad) aside to a name that is
// new: sub-second time plus a counter, claimed with O_EXCL before the
// rename replaces the placeholder. If the moved file no longer holds bad's
// bytes (or, for a file too large, is no longer too large: another program
// rewrote it in between), it is put back when nothing took its place, and
// "" is returned.
func (s *Store) quarantine(target string, bad *corruptError) (string, error) {
	stamp := s.now().UTC().Format("20060102T150405.000000000Z")
	var aside string
	for i := 1; ; i++ {
		aside = fmt.Sprintf("%s.corrupt-%s", target, stamp)
		if i > 1 {
			aside += fmt.Sprintf("-%d", i)
		}
		f, err := os.OpenFile(aside, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 1000 {
			return "", err
		}
	}
	if err := os.Rename(target, aside); err != nil {
		os.Remove(aside)
		return "", err
	}
	moved, err := safefile.Read(aside, maxStoreBytes)
	var tooLarge *safefile.TooLargeError
	rewritten := err == nil && (bad.tooLarge || !bytes.Equal(moved, bad.data))
	if !bad.tooLarge && errors.As(err, &tooLarge) {
		rewritten = true
	}
	if rewritten {
		if os.Link(aside, target) == nil {
			os.Remove(aside)
			return "", nil
		}
	}
	return aside, nil
}

// corruptError is a store file that stayed invalid over two reads, or one
// larger than maxStoreBytes (no token store comes near: it is not one).
type corruptError struct {
	path, problem string
	data          []byte // never shown: it may hold tokens; nil when tooLarge
	tooLarge      bool
}

func (e *corruptError) Error() string {
	if e.tooLarge {
		return fmt.Sprintf("the token store %s %s, so it is not one", e.path, e.problem)
	}
	return fmt.Sprintf("%s: %s (%s)", ErrCorruptStore, e.path, e.problem)
}

// maxStoreBytes bounds the token store ccmux reads: a login's record is
// about 1 KB, so 4 MiB holds thousands; a larger file is judged corrupt
// (moved aside by the next write) rather than read into memory.
const maxStoreBytes = 4 << 20

func (e *corruptError) Unwrap() error { return ErrCorruptStore }

// readFile reads and decodes the file, retrying a read that does not parse
// until the same bytes are read again stableAfter later (then the file is
// corrupt) or maxReadRetry has passed. The proxy asks for a credential on every
// request, so decoded records are reused while a stat shows the same file.
func (s *Store) readFile() (map[string]record, error) {
	if recs, ok, err := s.cachedRecords(); ok {
		return recs, err
	}
	if err := s.fixMode(filepath.Dir(s.path), 0o700, true); err != nil {
		return nil, err
	}
	if err := s.fixMode(s.path, 0o600, false); err != nil {
		return nil, err
	}
	var prev []byte
	var prevStat fs.FileInfo
	var since time.Time // when prev was first read
	start, wait := time.Now(), firstReadRetry
	for {
		recs, data, fi, problem, err := s.readOnce()
		if err != nil || problem == "" {
			return recs, err
		}
		// A write in between changes the modification time (or the
		// file), even when it leaves the same bytes behind.
		if prev == nil || !bytes.Equal(prev, data) || !sameStat(prevStat, fi) {
			prev, prevStat, since = data, fi, time.Now()
		} else if time.Since(since) >= stableAfter {
			if len(bytes.TrimSpace(data)) == 0 {
				return map[string]record{}, nil // empty, and not being written
			}
			cerr := &corruptError{path: s.path, problem: problem, data: data}
			if time.Since(fi.ModTime()) >= racyWindow { // its stat will show any change
				s.cacheMu.Lock()
				s.corrupt, s.corruptErr = fi, cerr
				s.cacheMu.Unlock()
			}
			return nil, cerr
		}
		if time.Since(start) >= maxReadRetry {
			return nil, fmt.Errorf("the token store %s kept changing while being read (another program is writing it); try again", s.path)
		}
		if afterBadRead != nil {
			afterBadRead()
		}
		time.Sleep(wait/2 + rand.N(wait))
		wait = min(wait*2, lastReadRetry)
	}
}

func sameStat(a, b fs.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// racyWindow: a file modified less than this long ago may change again
// within the file system's timestamp granularity without its stat changing
// (an in-place writer keeps the inode and often the size), so it is not cached.
const racyWindow = time.Second

// cachedRecords answers a read from the last one while a stat shows the
// same file: its records, or its corrupt verdict as the error.
func (s *Store) cachedRecords() (recs map[string]record, ok bool, err error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, false, nil
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if sameStat(fi, s.corrupt) {
		return nil, true, s.corruptErr
	}
	hit := s.cached != nil && os.SameFile(fi, s.cached) && fi.ModTime().Equal(s.cached.ModTime()) &&
		fi.Size() == s.cached.Size() && fi.Mode() == s.cached.Mode()
	if !hit {
		return nil, false, nil
	}
	return maps.Clone(s.cachedRecs), true, nil
}

// readOnce makes one read. problem is non-empty when the bytes read do not
// parse (data holds them; an empty file counts, as it may be mid-rewrite);
// err is a failure to read at all, such as a path that is not a file.
func (s *Store) readOnce() (recs map[string]record, data []byte, fi fs.FileInfo, problem string, err error) {
	fi, err = os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]record{}, nil, nil, "", nil
	}
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("reading the token store %s: %w", s.path, err)
	}
	if err := checkRegular(s.path, fi.Mode()); err != nil {
		return nil, nil, nil, "", err
	}
	// safefile never blocks on a named pipe swapped in after the Stat,
	// checks the opened file again and reads at most maxStoreBytes.
	data, err = safefile.Read(s.path, maxStoreBytes)
	var notRegular *safefile.NotRegularError
	var tooLarge *safefile.TooLargeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return map[string]record{}, nil, nil, "", nil
	case errors.As(err, &notRegular):
		return nil, nil, nil, "", checkRegular(s.path, notRegular.Mode)
	case errors.As(err, &tooLarge):
		return nil, nil, nil, "", storeTooLarge(s.path, tooLarge.Size)
	case err != nil:
		return nil, nil, nil, "", fmt.Errorf("reading the token store %s: %w", s.path, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, data, fi, "the file is empty", nil
	}
	recs = map[string]record{}
	if err := json.Unmarshal(data, &recs); err != nil {
		// Say where, never what: the bytes around the error may be a token.
		return nil, data, fi, jsonProblem(err), nil
	}
	for id, r := range recs {
		if r.ProviderID == "" && !r.opaque {
			r.ProviderID = id
			if r.base != nil {
				base := *r.base
				base.ProviderID = id
				r.base = &base
			}
			recs[id] = r
		}
	}
	// Cache under the stat taken before reading: the content is at least
	// as new as it. A recently modified file is not cached (racyWindow).
	if time.Since(fi.ModTime()) > racyWindow {
		s.cacheMu.Lock()
		s.cached, s.cachedRecs = fi, maps.Clone(recs)
		s.cacheMu.Unlock()
	}
	if s.onLoad != nil {
		s.onLoad(recs)
	}
	return recs, data, fi, "", nil
}

// storeTooLarge is the verdict on a token store of size bytes, over
// maxStoreBytes.
func storeTooLarge(path string, size int64) *corruptError {
	return &corruptError{path: path, tooLarge: true,
		problem: fmt.Sprintf("is %d bytes, over the %d (4 MiB) a token store may have", size, maxStoreBytes)}
}

// checkRegular says, naming path, what is there instead of a token file.
func checkRegular(path string, mode fs.FileMode) error {
	if mode.IsRegular() {
		return nil
	}
	return fmt.Errorf("the token store %s is %s, not a file: move it away so ccmux can keep its logins there", path, safefile.Kind(mode))
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return "the top level should be an object"
	default:
		return "unexpected content"
	}
}

// target is the file the store's path names: itself, or the final target
// of a symbolic link (which may not exist yet). Writes replace the target,
// in its own directory, so a linked store stays a link.
func (s *Store) target() (string, error) {
	p := s.path
	for range 40 {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", fmt.Errorf("reading the token store %s: %w", s.path, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("reading the token store link %s: %w", p, err)
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", fmt.Errorf("the token store %s is a loop of symbolic links", s.path)
}

// writeLocked replaces the store with recs atomically: temporary file in the
// target's directory, fsync, rename, fsync of the directory. The caller
// holds the lock.
func (s *Store) writeLocked(recs map[string]record) error {
	data, err := encodeStore(recs)
	if err != nil {
		return fmt.Errorf("encoding the token store: %w", err)
	}
	target, err := s.target()
	if err != nil {
		return err
	}
	s.removeStaleTemps(target)
	if err := s.writeFileAtomic(target, data); err != nil {
		return fmt.Errorf("writing the token store %s: %w", s.path, err)
	}
	return nil
}

// writeFileAtomic replaces path with data, mode 0600, through atomicfile;
// a directory that could not be synced after the rename is only a warning.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	err := atomicfile.Write(path, data, 0o600)
	if atomicfile.IsDirSync(err) {
		s.log.Warn("could not sync the directory", "path", filepath.Dir(path), "err", err)
		return nil
	}
	return err
}

// removeStaleTemps deletes temporary files a crashed writer left beside
// target; the caller holds the lock, so no live writer owns one.
func (s *Store) removeStaleTemps(target string) {
	dir := filepath.Dir(target)
	stale, _ := filepath.Glob(filepath.Join(dir, atomicfile.TempPattern(target)))
	for _, name := range stale {
		os.Remove(name)
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
