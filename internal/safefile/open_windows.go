package safefile

import (
	"os"
)

// OpenNonBlocking opens path for reading; Windows has no named pipes in the
// file system namespace to block on.
func OpenNonBlocking(path string) (*os.File, error) { return os.Open(path) }

// OpenAppend opens path for appending, creating it when missing. Windows
// has no O_NOFOLLOW: a symbolic link (or a junction) found by Lstat just
// before opening is refused as a *NotRegularError. File modes mean little
// there (the user profile's ACL applies), so perm is only the mode a new
// file is created with.
func OpenAppend(path string, perm os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = &NotRegularError{Path: path, Mode: fi.Mode()}
		}
		return nil, err
	}
	return f, nil
}

// Tighten refuses a path that is not a regular file; Windows keeps its
// ACLs, so there is no mode to set.
func Tighten(path string, perm os.FileMode) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return nil
}
