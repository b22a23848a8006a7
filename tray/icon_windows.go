package tray

import (
	"fyne.io/systray"

	"ccmux/assets"
)

// setIcon passes .ico bytes: the Windows notification area loads nothing else.
func setIcon(i assets.Icon) { systray.SetIcon(assets.ICO(i)) }

func setTitle(t string) { systray.SetTitle(t) }
