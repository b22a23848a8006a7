package tray

import (
	"fyne.io/systray"

	"ccmux/assets"
)

// setIcon uses the black template so the menu bar recolours it for light
// and dark mode; systray needs a non-empty slice here or it panics.
func setIcon(i assets.Icon) { systray.SetTemplateIcon(assets.Template(i), assets.PNG(i)) }

// beforeRun does nothing: the status item exists only once Run has started,
// and a title would show as text beside the menu-bar icon.
func beforeRun(view) {}
