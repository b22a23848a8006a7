//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyHangup sends SIGHUP, the Unix "reload your config", to c.
func notifyHangup(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }
