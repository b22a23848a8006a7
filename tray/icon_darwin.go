package tray

import (
	"fyne.io/systray"

	"ccmux/assets"
)

// setIcon uses the black template so the menu bar recolours it for light
// and dark mode; systray needs a non-empty slice here or it panics.
func setIcon(i assets.Icon) { systray.SetTemplateIcon(assets.Template(i), assets.PNG(i)) }

// setTitle does nothing: on macOS a title is text beside the menu-bar icon.
func setTitle(string) {}
