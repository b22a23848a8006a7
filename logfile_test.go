//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
)

// The tray's log, its folder and every backup are private (0700, 0600),
// whatever modes were there before and across rotations; before, an
// existing 0644 log stayed 0644 and so did its rotated and .gz copies.
// Backups an older ccmux left (lumberjack's names) are tightened too.
func TestLogFileIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ccmux")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "ccmux.log")
	old := map[string]string{
		path: "old line\n",
		filepath.Join(dir, "ccmux-2026-01-01T00-00-00.000.log"):    "older\n",
		filepath.Join(dir, "ccmux-2025-12-01T00-00-00.000.log.gz"): "gz",
		filepath.Join(dir, "ccmux.log.2.gz"):                       "gz",
	}
	for p, content := range old {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o644)
	}
	w, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("new line\n")); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "old line\nnew line\n" {
		t.Errorf("the log holds %q, want the old line kept and the new one appended", data)
	}
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("after rotation\n"))
	if data := gunzip(t, path+".1.gz"); string(data) != "old line\nnew line\n" {
		t.Errorf("the first backup holds %q", data)
	}
	if data, _ := os.ReadFile(path); string(data) != "after rotation\n" {
		t.Errorf("the log holds %q after the rotation", data)
	}
	testsupport.AssertMode(t, dir, 0o700)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		testsupport.AssertMode(t, filepath.Join(dir, e.Name()), 0o600)
	}
}

// A symbolic link at the log's path is refused with one sentence naming
// it, and nothing is written through it to its target.
func TestLogFileSymlinkRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ccmux")
	os.MkdirAll(dir, 0o700)
	target := filepath.Join(t.TempDir(), "elsewhere.txt")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ccmux.log")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	w, err := openLog(path)
	if err == nil {
		w.Write([]byte("secret account line\n"))
		w.Close()
		t.Error("openLog accepted a symbolic link")
	} else if want := "the log file " + path + " is a symbolic link; "; !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("got %q, want one sentence starting %q", err, want)
	}
	if data, _ := os.ReadFile(target); string(data) != "precious\n" {
		t.Errorf("the link's target now holds %q", data)
	}
	testsupport.AssertMode(t, target, 0o644)
}
