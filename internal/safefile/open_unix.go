//go:build unix

package safefile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// OpenNonBlocking opens path for reading without blocking on a named pipe.
func OpenNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
}

// OpenAppend opens path for appending, creating it with perm when missing,
// without following a symbolic link in its last component and without
// blocking on a named pipe; it then sets the file's mode to perm, so a
// file made with a looser one is tightened. A path that is not a regular
// file, a symbolic link included, is a *NotRegularError.
func OpenAppend(path string, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, perm)
	if errors.Is(err, unix.ELOOP) {
		return nil, &NotRegularError{Path: path, Mode: os.ModeSymlink}
	}
	if errors.Is(err, unix.ENXIO) {
		// O_WRONLY|O_NONBLOCK on a named pipe nobody reads.
		return nil, &NotRegularError{Path: path, Mode: os.ModeNamedPipe}
	}
	if err != nil {
		return nil, err
	}
	return tighten(f, path, perm)
}

// Tighten sets the mode of the regular file at path to perm, without
// following a symbolic link in its last component (one is a
// *NotRegularError and is left alone).
func Tighten(path string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return &NotRegularError{Path: path, Mode: os.ModeSymlink}
	}
	if err != nil {
		return err
	}
	f, err = tighten(f, path, perm)
	if err != nil {
		return err
	}
	return f.Close()
}

// tighten checks that f is a regular file and gives it perm; f is closed
// on an error.
func tighten(f *os.File, path string, perm os.FileMode) (*os.File, error) {
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	if err == nil && fi.Mode().Perm() != perm {
		err = f.Chmod(perm)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
