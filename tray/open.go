package tray

import "github.com/pkg/browser"

// openFile opens path in the user's default application. pkg/browser waits
// for the opener (xdg-open on Linux) to exit, so it never runs on the loop.
func openFile(path string) error { return browser.OpenFile(path) }

// openURL opens url in the user's browser; like openFile, off the loop.
func openURL(url string) error { return browser.OpenURL(url) }
