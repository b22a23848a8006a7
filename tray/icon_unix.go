//go:build !darwin && !windows

package tray

import (
	"fyne.io/systray"

	"ccmux/assets"
)

// setIcon sends the PNG as the StatusNotifierItem's pixmap.
func setIcon(i assets.Icon) { systray.SetIcon(assets.PNG(i)) }

// setTitle must run before systray.Run: the item's D-Bus Id is taken from it.
func setTitle(t string) { systray.SetTitle(t) }
