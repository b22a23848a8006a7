package testsupport

import "errors"

// Mkfifo fails: Windows has no named pipes in its file system.
func Mkfifo(string, uint32) error { return errors.New("no named pipes in the Windows file system") }
