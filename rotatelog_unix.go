//go:build unix

package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"ccmux/internal/safefile"
)

// openLogFile opens the log at path for reading and appending, creating
// it 0600 when missing, without following a symbolic link in its last
// component and without blocking on a named pipe; an existing file is
// tightened to 0600. A path that is not a regular file is a
// *safefile.NotRegularError. It never truncates.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, &safefile.NotRegularError{Path: path, Mode: os.ModeSymlink}
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &safefile.NotRegularError{Path: path, Mode: fi.Mode()}
	}
	if err == nil && fi.Mode().Perm() != 0o600 {
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// noFollow is added to every other open of the log's files.
const noFollow = unix.O_NOFOLLOW
