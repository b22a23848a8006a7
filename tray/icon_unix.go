//go:build !darwin && !windows

package tray

import (
	"fyne.io/systray"

	"ccmux/assets"
)

// setIcon sends the PNG as the StatusNotifierItem's pixmap.
func setIcon(i assets.Icon) { systray.SetIcon(assets.PNG(i)) }

// beforeRun sets what fyne.io/systray reads when it exports the item: the
// title (the item's D-Bus Id comes from it), and the icon and tooltip, which
// are lost if they change while the item is being exported.
func beforeRun(v view) {
	systray.SetTitle("ccmux")
	setIcon(v.Icon)
	systray.SetTooltip(v.Tooltip)
}
