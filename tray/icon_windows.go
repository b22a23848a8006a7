package tray

import (
	"fyne.io/systray"

	"ccmux/assets"
)

// setIcon passes .ico bytes: the Windows notification area loads nothing else.
func setIcon(i assets.Icon) { systray.SetIcon(assets.ICO(i)) }

// beforeRun does nothing: the Windows tray takes an icon only once it is ready.
func beforeRun(view) {}
