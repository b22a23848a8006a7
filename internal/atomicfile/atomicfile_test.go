package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteReplacesWithMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, perm := range []os.FileMode{0o600, 0o644} {
		data := []byte("new " + perm.String())
		if err := Write(path, data, perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %q, %v", got, err)
		}
		if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), perm)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, TempPattern(path))); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Until the rename the old file is whole, and a failed rename leaves no
// temporary file behind.
func TestWriteKeepsTheOldFileUntilTheRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []byte
	BeforeRename = func() {
		seen, _ = os.ReadFile(path)
		os.Remove(path)
		os.Mkdir(path, 0o700) // the rename onto a directory now fails
	}
	defer func() { BeforeRename = nil }()
	if err := Write(path, []byte("new"), 0o600); err == nil {
		t.Fatal("the rename onto a directory succeeded")
	}
	if string(seen) != "old" {
		t.Errorf("before the rename the file held %q, want the old one", seen)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, TempPattern(path))); len(left) != 0 {
		t.Errorf("temporary files left after a failed write: %v", left)
	}
}
