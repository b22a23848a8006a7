//go:build !unix

package main

import (
	"os"

	"ccmux/internal/safefile"
)

// openLogFile opens the log at path for reading and appending, creating
// it when missing. Windows has no O_NOFOLLOW: a symbolic link (or a
// junction) found by Lstat just before opening is refused, and so is an
// opened file that is not a regular one. File modes mean little there
// (the user profile's ACL applies). It never truncates.
func openLogFile(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &safefile.NotRegularError{Path: path, Mode: fi.Mode()}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = &safefile.NotRegularError{Path: path, Mode: fi.Mode()}
		}
		return nil, err
	}
	return f, nil
}

// noFollow: the backups are created with O_EXCL, which refuses any link.
const noFollow = 0
