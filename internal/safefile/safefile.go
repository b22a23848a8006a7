// Package safefile reads and opens ccmux's own files (the config, the token
// store, the usage snapshot, the log) so that what else may sit at their
// paths cannot hang or fool it: a named pipe, a device, a symbolic link to
// one, a file too large to hold in memory. It never writes file contents.
package safefile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// NotRegularError says that Path holds something other than a regular file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file", e.Path, Kind(e.Mode))
}

// TooLargeError says that the file at Path holds more than Limit bytes.
type TooLargeError struct {
	Path  string
	Size  int64 // what was seen: the size stat gave, or what reading found
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is %d bytes, over the %d this file may have", e.Path, e.Size, e.Limit)
}

// Kind names what a file mode is, for a sentence: "a directory", "a named
// pipe (FIFO)", "a symbolic link".
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// Read returns the contents of the regular file at path, at most limit
// bytes. A path that is not a regular file (checked before opening, and on
// the opened file, which is opened without blocking on a named pipe) is a
// *NotRegularError, a larger file a *TooLargeError; a missing file is an
// error satisfying errors.Is(err, fs.ErrNotExist).
func Read(path string, limit int64) ([]byte, error) {
	// Stat first so that opening never touches a device; the opened file
	// is checked again, as the path may have changed in between.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := check(path, fi, limit); err != nil {
		return nil, err
	}
	f, err := OpenNonBlocking(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := check(path, fi, limit); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Size: int64(len(data)), Limit: limit}
	}
	return data, nil
}

func check(path string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	if fi.Size() > limit {
		return &TooLargeError{Path: path, Size: fi.Size(), Limit: limit}
	}
	return nil
}
