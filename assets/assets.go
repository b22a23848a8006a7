// Package assets holds ccmux's embedded icons: one per tray state as PNG
// (Linux, notifications), ICO (Windows) and a black template PNG (macOS menu bar).
// The SVG sources are in svg/; gen.go exports them. It never does I/O at run time.
package assets

import "embed"

//go:generate go run gen.go

// Icon is a tray state's picture.
type Icon int

// The tray states that have an icon.
const (
	Active    Icon = iota // signed in and the proxy is on
	ProxyOff              // signed in, proxy off
	SignedOut             // not signed in
	Error                 // session expired, refresh failing or proxy failed to start
	Warning               // a usage limit is at 90 % or spent
)

// Icons lists every Icon, for tests and generators.
var Icons = []Icon{Active, ProxyOff, SignedOut, Error, Warning}

// String is the icon's file stem, e.g. "proxy-off".
func (i Icon) String() string {
	switch i {
	case Active:
		return "active"
	case ProxyOff:
		return "proxy-off"
	case SignedOut:
		return "signed-out"
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "unknown"
}

//go:embed png ico
var files embed.FS

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("assets: " + name + " is not embedded: " + err.Error()) // a build mistake, caught by tests
	}
	return b
}

// PNG is the tray icon for Linux (and the macOS fallback), 64×64 px.
func PNG(i Icon) []byte { return mustRead("png/" + i.String() + ".png") }

// Template is the macOS menu-bar template icon (black and alpha only), 44×44 px.
func Template(i Icon) []byte { return mustRead("png/" + i.String() + "-template.png") }

// ICO is the Windows tray icon with 16, 20, 24, 32, 48 and 256 px images.
func ICO(i Icon) []byte { return mustRead("ico/" + i.String() + ".ico") }

// AppIcon is the 128×128 px application picture shown in notifications.
func AppIcon() []byte { return mustRead("png/ccmux-128.png") }
