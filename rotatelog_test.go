//go:build linux

package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ccmux/internal/testsupport"
)

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return data
}

func newTestLog(t *testing.T, maxSize int64, backups int) (*rotatingLog, string, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "ccmux.log")
	w, err := openRotatingLog(path, maxSize, backups)
	if err != nil {
		t.Fatal(err)
	}
	var said bytes.Buffer
	w.Stderr = &said
	t.Cleanup(func() { w.Close() })
	return w, path, &said
}

// The log rotates before a write would take it past MaxSize, keeps the
// newest 3 backups, gzip-compressed and 0600, and loses no recent line.
func TestRotatingLogKeepsThreeCompressedBackups(t *testing.T) {
	w, path, said := newTestLog(t, 100, 3)
	for i := range 40 {
		if _, err := fmt.Fprintf(w, "line %03d of the log\n", i); err != nil { // 20 bytes
			t.Fatal(err)
		}
	}
	var all string
	for n := 3; n >= 1; n-- {
		b := path + "." + fmt.Sprint(n) + ".gz"
		testsupport.AssertMode(t, b, 0o600)
		data := gunzip(t, b)
		if len(data) != 100 {
			t.Errorf("%s holds %d bytes, want 100", b, len(data))
		}
		all += string(data)
	}
	data, _ := os.ReadFile(path)
	testsupport.AssertMode(t, path, 0o600)
	all += string(data)
	var want string
	for i := 20; i < 40; i++ {
		want += fmt.Sprintf("line %03d of the log\n", i)
	}
	if all != want {
		t.Errorf("the backups and the log hold\n%s\nwant the last 20 lines:\n%s", all, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 4 {
		t.Errorf("the folder holds %d files, want the log and 3 backups", len(entries))
	}
	if said.Len() != 0 {
		t.Errorf("stderr got %q", said)
	}
}

// Writers in parallel (slog handlers do) lose and tear no line, across
// rotations.
func TestRotatingLogConcurrentWriters(t *testing.T) {
	w, path, _ := newTestLog(t, 1000, 1000)
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(w, "writer %d line %03d\n", g, i)
			}
		}()
	}
	wg.Wait()
	w.Close()
	var all []byte
	backups, _ := filepath.Glob(path + ".*.gz")
	for _, b := range backups {
		all = append(all, gunzip(t, b)...)
	}
	data, _ := os.ReadFile(path)
	all = append(all, data...)
	got := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range got {
		seen[l] = true
	}
	if len(got) != writers*lines || len(seen) != writers*lines {
		t.Errorf("got %d lines (%d distinct), want %d", len(got), len(seen), writers*lines)
	}
	if len(backups) < 10 {
		t.Errorf("only %d rotations", len(backups))
	}
}

// A symbolic link swapped in at the log's path after it was opened is
// neither written through nor truncated at the next rotation: the log says
// so once on stderr and drops its lines.
func TestRotatingLogSymlinkSwappedIn(t *testing.T) {
	w, path, said := newTestLog(t, 100, 3)
	target := filepath.Join(t.TempDir(), "elsewhere.txt")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(target, 0o644)
	w.Write([]byte("before the swap\n"))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	var failed int
	for i := range 30 {
		if _, err := fmt.Fprintf(w, "secret account line %02d\n", i); err != nil {
			failed++
		}
	}
	if data, _ := os.ReadFile(target); string(data) != "precious\n" {
		t.Errorf("the link's target now holds %q", data)
	}
	testsupport.AssertMode(t, target, 0o644)
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link at the log's path is gone: %v", err)
	}
	if failed == 0 {
		t.Error("no write reported an error")
	}
	if n := strings.Count(said.String(), "\n"); n != 1 || !strings.Contains(said.String(), "the log file "+path+" is a symbolic link;") {
		t.Errorf("stderr got %q, want one line naming the link", said)
	}
	// Once the link is gone, logging resumes.
	os.Remove(path)
	if _, err := w.Write([]byte("back\n")); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "back\n" {
		t.Errorf("the log holds %q", data)
	}
	testsupport.AssertMode(t, path, 0o600)
}

// A symbolic link at a backup's path (or the temporary one) is never
// opened: rotations move it along and drop it, its target untouched.
func TestRotatingLogSymlinkAtBackup(t *testing.T) {
	w, path, _ := newTestLog(t, 100, 3)
	target := filepath.Join(t.TempDir(), "elsewhere.txt")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(target, 0o644)
	for _, name := range []string{path + ".1.gz", path + ".1.gz.tmp", path + ".3.gz"} {
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		if _, err := fmt.Fprintf(w, "line %03d of the log\n", i); err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			os.Symlink(target, path+".2.gz.tmp")
			os.Remove(path + ".2.gz")
			os.Symlink(target, path+".2.gz")
		}
	}
	if data, _ := os.ReadFile(target); string(data) != "precious\n" {
		t.Errorf("the link's target now holds %q", data)
	}
	testsupport.AssertMode(t, target, 0o644)
	for n := 1; n <= 3; n++ {
		b := path + "." + fmt.Sprint(n) + ".gz"
		testsupport.AssertMode(t, b, 0o600)
		gunzip(t, b)
	}
}
