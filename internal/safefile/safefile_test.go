//go:build unix

package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("hello"), 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	if data, err := Read(file, 5); err != nil || string(data) != "hello" {
		t.Errorf("Read(file) = %q, %v", data, err)
	}
	var tooLarge *TooLargeError
	if _, err := Read(file, 4); !errors.As(err, &tooLarge) || !strings.Contains(err.Error(), file) {
		t.Errorf("a file over the limit: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "none"), 5); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	for path, kind := range map[string]string{fifo: "a named pipe (FIFO)", zero: "a device", dir: "a directory"} {
		done := make(chan error, 1)
		go func() { _, err := Read(path, 1<<20); done <- err }()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || err.Error() != path+" is "+kind+", not a regular file" {
				t.Errorf("Read(%s) = %v, want %s", path, err, kind)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%s) blocks", path)
		}
	}
}

// OpenAppend never writes through a symbolic link and tightens the mode of
// an existing file; Tighten likewise.
func TestOpenAppendAndTighten(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	var nr *NotRegularError
	if f, err := OpenAppend(link, 0o600); !errors.As(err, &nr) || nr.Mode&fs.ModeSymlink == 0 {
		t.Errorf("OpenAppend(symlink) = %v, %v; want a *NotRegularError for a symbolic link", f, err)
	}
	if err := Tighten(link, 0o600); !errors.As(err, &nr) {
		t.Errorf("Tighten(symlink) = %v", err)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o644 {
		t.Errorf("the link's target changed mode to %v", fi.Mode().Perm())
	}
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	if _, err := OpenAppend(fifo, 0o600); !errors.As(err, &nr) {
		t.Errorf("OpenAppend(fifo) = %v", err)
	}
	f, err := OpenAppend(target, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("+")
	f.Close()
	if data, _ := os.ReadFile(target); string(data) != "keep+" {
		t.Errorf("appended: %q", data)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, nil, 0o644)
	if err := Tighten(other, 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(other); fi.Mode().Perm() != 0o600 {
		t.Errorf("Tighten: mode %v, want 0600", fi.Mode().Perm())
	}
}
