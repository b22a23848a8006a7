package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A token store over maxStoreBytes is not read into memory: reading it is
// an error naming the file and its size (valid JSON or not: no token store
// comes near), and the next sign-in moves it aside like a corrupt one.
func TestTooLargeStoreIsRefusedThenMovedAside(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Dir(e.path), 0o700); err != nil {
		t.Fatal(err)
	}
	big := `{"other-app":{"note":"` + strings.Repeat("a", maxStoreBytes) + `"}}`
	if err := os.WriteFile(e.path, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func() error{
		func() error { _, err := e.c.Accounts(); return err },
		func() error { _, err := e.c.Credential(context.Background(), "anthropic-max"); return err },
	} {
		err := read()
		if !errors.Is(err, ErrCorruptStore) || !strings.Contains(err.Error(), e.path) ||
			!strings.Contains(err.Error(), "4 MiB") || !strings.Contains(err.Error(), "ccmux login") {
			t.Errorf("reading a %d-byte store: %v", len(big), err)
		}
	}
	e.signIn("anthropic-max")
	aside, _ := filepath.Glob(e.path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("moved-aside files: %v", aside)
	}
	if fi, err := os.Stat(aside[0]); err != nil || fi.Size() != int64(len(big)) {
		t.Errorf("the moved file: %v, %v", fi, err)
	}
	if accts, err := e.c.Accounts(); err != nil || len(accts) == 0 {
		t.Errorf("after sign-in: %v, %v", accts, err)
	}
}

// A store at the limit is still read.
func TestStoreAtTheLimitIsRead(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Dir(e.path), 0o700); err != nil {
		t.Fatal(err)
	}
	head, tail := `{"other-app":{"note":"`, `"}}`
	data := head + strings.Repeat("a", maxStoreBytes-len(head)-len(tail)) + tail
	if err := os.WriteFile(e.path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Accounts(); err != nil {
		t.Errorf("a %d-byte store: %v", len(data), err)
	}
}
