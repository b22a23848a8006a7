//go:build !unix

package main

import "os"

// notifyHangup does nothing: this OS has no SIGHUP; the tray's Reload
// config item reloads.
func notifyHangup(chan<- os.Signal) {}
