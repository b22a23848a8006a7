//go:build !windows

package testsupport

import "syscall"

// Mkfifo makes a named pipe at path: a token file that blocks a reader.
func Mkfifo(path string, mode uint32) error { return syscall.Mkfifo(path, mode) }
