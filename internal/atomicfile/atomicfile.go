// Package atomicfile replaces files so that a crash leaves the old file or
// the new one, never half of one. ccmux writes its token store, its usage
// snapshot and the start-at-login entries this way.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// BeforeRename, when set by tests, runs after the temporary file is written
// and synced and before it replaces the target (where a crash would hit).
var BeforeRename func()

// DirSyncError is returned when the file is in place but the directory
// holding it could not be synced: the new file is there, and a crash soon
// after may bring the old one back. Callers may take it as a success.
type DirSyncError struct {
	Dir string
	Err error
}

func (e *DirSyncError) Error() string { return "syncing the directory " + e.Dir + ": " + e.Err.Error() }
func (e *DirSyncError) Unwrap() error { return e.Err }

// TempPattern is the name pattern (for filepath.Glob beside path) of the
// temporary files Write makes, which a crash may leave behind.
func TempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// Write replaces path with data: a temporary file in the same directory
// with mode perm, fsync, rename over path, fsync of the directory. The
// directory must exist. On Windows a mode that cannot be set is not an
// error (the file takes its folder's ACL).
func Write(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, TempPattern(path))
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Our own new file: setting its mode touches nothing of anyone else's.
	if err := tmp.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if BeforeRename != nil {
		BeforeRename()
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return &DirSyncError{Dir: dir, Err: err}
	}
	return nil
}

// IsDirSync reports whether err is only a failed directory sync after the
// file was put in place.
func IsDirSync(err error) bool {
	var d *DirSyncError
	return errors.As(err, &d)
}
