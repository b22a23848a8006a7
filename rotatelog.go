package main

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"ccmux/internal/safefile"
)

// rotatingLog is the tray's log file: an io.Writer, safe for concurrent
// use, that appends to Path and, when a write would take it past MaxSize,
// first moves what it holds to Path.1.gz (gzip-compressed), shifting the
// older ones to .2.gz … up to Backups of them.
//
// It opens Path by name only with openLogFile (never following a symbolic
// link, never truncating) and keeps that file open between rotations, so
// a link planted at Path is never written through. Backups are
// compressed from that open file into a new file made with O_EXCL (which
// refuses a link) and then renamed; a link at a backup's path is only
// renamed or removed, never opened. Every file is 0600.
//
// When Path cannot be opened (a link was planted there, say), it says so
// once on Stderr and drops the lines until it can open it again.
type rotatingLog struct {
	Path     string
	MaxSize  int64 // bytes
	Backups  int
	Stderr   io.Writer
	mu       sync.Mutex
	f        *os.File // nil while Path cannot be opened
	size     int64
	reported bool // the current trouble was said on Stderr
}

// openRotatingLog opens path at once, so that a link or a non-file there is
// an error for the caller to show.
func openRotatingLog(path string, maxSize int64, backups int) (*rotatingLog, error) {
	w := &rotatingLog{Path: path, MaxSize: maxSize, Backups: backups, Stderr: os.Stderr}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *rotatingLog) open() error {
	f, err := openLogFile(w.Path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// backup is the name of the n-th newest backup, n from 1.
func (w *rotatingLog) backup(n int) string { return w.Path + "." + strconv.Itoa(n) + ".gz" }

// Write appends p to the log, rotating first when p would take it past
// MaxSize. A line that cannot be written is dropped with an error.
func (w *rotatingLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil && w.size > 0 && w.size+int64(len(p)) > w.MaxSize {
		w.rotate()
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			w.report(err)
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		w.report(err)
		return n, err
	}
	w.reported = false
	return n, nil
}

// Rotate moves the log to its first backup now.
func (w *rotatingLog) Rotate() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	return w.rotate()
}

// Close closes the log file.
func (w *rotatingLog) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// report says err once on Stderr, until a write succeeds again.
func (w *rotatingLog) report(err error) {
	if w.reported {
		return
	}
	w.reported = true
	var notFile *safefile.NotRegularError
	if errors.As(err, &notFile) {
		fmt.Fprintf(w.Stderr, "ccmux: the log file %s is %s; ccmux writes its log only to a file of its own and drops its log lines until that is removed\n", w.Path, safefile.Kind(notFile.Mode))
		return
	}
	fmt.Fprintf(w.Stderr, "ccmux: writing the log file %s: %v\n", w.Path, err)
}

// rotate compresses the open log into the first backup, shifts the older
// ones, and starts a new log at Path. It leaves w.f nil when Path cannot
// be opened again; the next Write says why.
func (w *rotatingLog) rotate() error {
	old := w.f
	w.f, w.size = nil, 0
	fi, statErr := old.Stat()
	err := w.compress(old)
	old.Close()
	if err != nil {
		// The old lines are lost, but the log does not grow without end.
		w.report(fmt.Errorf("compressing its old lines into %s: %w", w.backup(1), err))
	}
	// Remove Path only if it still is the file just compressed: a link
	// or a file put there since is not ours to remove (and the reopen
	// below refuses a link).
	if li, err := os.Lstat(w.Path); err == nil && statErr == nil && os.SameFile(fi, li) {
		os.Remove(w.Path)
	}
	return w.open()
}

// compress writes f's contents, gzip-compressed, to the first backup,
// through a temporary file made with O_EXCL, after shifting the older
// backups (renaming a name never follows a link).
func (w *rotatingLog) compress(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	tmp := w.backup(1) + ".tmp"
	os.Remove(tmp) // left by a crash; removing a link does not follow it
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, io.NewSectionReader(f, 0, fi.Size()))
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Chmod(0o600) // whatever the umask
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if w.Backups < 1 {
		return os.Remove(tmp)
	}
	if err := os.Remove(w.backup(w.Backups)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.Remove(tmp)
		return err
	}
	for n := w.Backups - 1; n >= 1; n-- {
		if err := os.Rename(w.backup(n), w.backup(n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			os.Remove(tmp)
			return err
		}
	}
	return os.Rename(tmp, w.backup(1))
}
