package assets

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"testing"
)

func decode(t *testing.T, name string, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	return img
}

// opaqueShare is the fraction of pixels with alpha above min: an icon that
// is blank, or a full square, is a broken export.
func opaqueShare(img image.Image, min uint32) float64 {
	b, n := img.Bounds(), 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a > min {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

func TestPNGIcons(t *testing.T) {
	seen := map[string]Icon{}
	for _, icon := range Icons {
		img := decode(t, icon.String(), PNG(icon))
		if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Errorf("%s: %v, want 64×64", icon, b)
		}
		if s := opaqueShare(img, 0x8000); s < 0.1 || s > 0.9 {
			t.Errorf("%s: %.0f%% opaque, want a drawn shape", icon, 100*s)
		}
		if other, dup := seen[string(PNG(icon))]; dup {
			t.Errorf("%s and %s are the same picture", icon, other)
		}
		seen[string(PNG(icon))] = icon
	}
	if img := decode(t, "app icon", AppIcon()); img.Bounds().Dx() != 128 {
		t.Errorf("app icon is %v, want 128×128", img.Bounds())
	}
}

func TestTemplatesAreBlackAndAlpha(t *testing.T) {
	for _, icon := range Icons {
		img := decode(t, icon.String()+" template", Template(icon))
		b := img.Bounds()
		if b.Dx() != 44 || b.Dy() != 44 {
			t.Errorf("%s template: %v, want 44×44", icon, b)
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if r, g, bl, a := img.At(x, y).RGBA(); a > 0 && (r|g|bl) != 0 {
					t.Fatalf("%s template: pixel (%d,%d) has colour; macOS templates must be black", icon, x, y)
				}
			}
		}
		if s := opaqueShare(img, 0x4000); s < 0.05 {
			t.Errorf("%s template is nearly empty (%.0f%% opaque)", icon, 100*s)
		}
	}
}

func TestICOHasTraySizes(t *testing.T) {
	for _, icon := range Icons {
		ico := ICO(icon)
		var hdr struct{ Reserved, Type, Count uint16 }
		if err := binary.Read(bytes.NewReader(ico), binary.LittleEndian, &hdr); err != nil || hdr.Type != 1 {
			t.Fatalf("%s.ico: bad header %+v %v", icon, hdr, err)
		}
		sizes := map[int]bool{}
		for i := 0; i < int(hdr.Count); i++ {
			e := ico[6+16*i:]
			w := int(e[0])
			if w == 0 {
				w = 256
			}
			size := binary.LittleEndian.Uint32(e[8:])
			off := binary.LittleEndian.Uint32(e[12:])
			if int(off+size) > len(ico) {
				t.Fatalf("%s.ico: image %d runs past the end", icon, i)
			}
			data := ico[off : off+size]
			switch {
			case bytes.HasPrefix(data, []byte("\x89PNG")):
				if img := decode(t, icon.String()+".ico", data); img.Bounds().Dx() != w {
					t.Errorf("%s.ico: entry says %d px, PNG is %v", icon, w, img.Bounds())
				}
			case binary.LittleEndian.Uint32(data) == 40:
				if dw := int(binary.LittleEndian.Uint32(data[4:])); dw != w {
					t.Errorf("%s.ico: entry says %d px, bitmap is %d", icon, w, dw)
				}
			default:
				t.Errorf("%s.ico: image %d is neither PNG nor DIB", icon, i)
			}
			sizes[w] = true
		}
		for _, want := range []int{16, 24, 32, 256} {
			if !sizes[want] {
				t.Errorf("%s.ico lacks a %d px image", icon, want)
			}
		}
	}
}
