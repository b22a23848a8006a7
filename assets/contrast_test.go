package assets

import (
	"image"
	"math"
	"testing"
)

// Panels seen in the wild: XFCE's and GNOME's dark grey, and a light one.
var panels = []struct {
	name    string
	r, g, b uint8
}{{"dark", 0x30, 0x30, 0x30}, {"light", 0xED, 0xED, 0xED}}

// luminance is WCAG's relative luminance of an sRGB colour (0–255 channels).
func luminance(r, g, b float64) float64 {
	lin := func(c float64) float64 {
		c /= 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}

// contrastShare is the share of the icon's pixels that, drawn on the panel
// colour, stand out from it by at least ratio (WCAG contrast).
func contrastShare(img image.Image, pr, pg, pb uint8, ratio float64) float64 {
	bg := luminance(float64(pr), float64(pg), float64(pb))
	b, n := img.Bounds(), 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA() // premultiplied, 16 bit
			over := func(c uint32, p uint8) float64 {
				return float64(c)/257 + float64(p)*(1-float64(a)/65535)
			}
			l := luminance(over(r, pr), over(g, pg), over(bl, pb))
			hi, lo := math.Max(l, bg), math.Min(l, bg)
			if (hi+0.05)/(lo+0.05) >= ratio {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

// Every tray icon must be seen on dark and light panels alike: enough of
// its pixels reach WCAG's 3:1 for graphics against each, and the outline
// of the signed-out state, which has no tile behind it, reaches 4.5:1.
func TestIconsStandOutOnDarkAndLightPanels(t *testing.T) {
	for _, icon := range Icons {
		img := decode(t, icon.String(), PNG(icon))
		ratio := 3.0
		if icon == SignedOut {
			ratio = 4.5
		}
		for _, p := range panels {
			s := contrastShare(img, p.r, p.g, p.b, ratio)
			t.Logf("%s on %s: %.0f%% of pixels at %.1f:1", icon, p.name, 100*s, ratio)
			if s < 0.08 {
				t.Errorf("%s on a %s panel: only %.0f%% of its pixels reach %.1f:1 contrast; want 8%%", icon, p.name, 100*s, ratio)
			}
		}
	}
}
