//go:build ignore

// gen exports the SVG sources in svg/ to the embedded PNG and ICO files, and
// the app icon to the macOS bundle's ccmux.icns in ../packaging/macos.
// It needs rsvg-convert (Debian: librsvg2-bin); the build does not, because
// the exported files are committed. Run: cd assets && go generate
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/jackmordaunt/icns/v3"
)

var states = []string{"active", "proxy-off", "signed-out", "error", "warning"}

// icoSizes are the images in each .ico; Windows picks 16/20/24/32 for the
// notification area depending on the display scale.
var icoSizes = []int{16, 20, 24, 32, 48, 256}

func main() {
	log.SetFlags(0)
	for _, dir := range []string{"png", "ico"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	for _, s := range states {
		write(filepath.Join("png", s+".png"), raster("svg/"+s+".svg", 64))
		write(filepath.Join("png", s+"-template.png"), raster("svg/"+s+"-template.svg", 44))
		var imgs [][]byte
		for _, size := range icoSizes {
			imgs = append(imgs, raster("svg/"+s+".svg", size))
		}
		write(filepath.Join("ico", s+".ico"), ico(imgs))
	}
	write(filepath.Join("png", "ccmux-128.png"), raster("svg/active.svg", 128))
	write(filepath.Join("..", "packaging", "macos", "ccmux.icns"), icnsFile(raster("svg/active.svg", 1024)))
}

// icnsFile is a macOS icon with every size from 16 to 1024 px, scaled down
// from one 1024 px picture (Retina Finder and Dock views use the big ones).
func icnsFile(p []byte) []byte {
	img, err := png.Decode(bytes.NewReader(p))
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	if err := icns.Encode(&out, img); err != nil {
		log.Fatal(err)
	}
	return out.Bytes()
}

func raster(svg string, size int) []byte {
	out, err := exec.Command("rsvg-convert", "-w", fmt.Sprint(size), "-h", fmt.Sprint(size), svg).Output()
	if err != nil {
		log.Fatalf("rsvg-convert %s: %v", svg, err)
	}
	return out
}

func write(name string, b []byte) {
	if err := os.WriteFile(name, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

// ico packs PNG images into an .ico file. Sizes up to 48 px are stored as
// 32-bit DIBs (every Windows version's LoadImage reads them); 256 px stays PNG.
func ico(pngs [][]byte) []byte {
	var entries, data bytes.Buffer
	offset := 6 + 16*len(pngs)
	for _, p := range pngs {
		img, err := png.Decode(bytes.NewReader(p))
		if err != nil {
			log.Fatal(err)
		}
		w := img.Bounds().Dx()
		payload := p
		if w <= 48 {
			payload = dib(img)
		}
		dim := byte(w)
		if w >= 256 {
			dim = 0
		}
		binary.Write(&entries, binary.LittleEndian, struct {
			W, H, Colors, Reserved byte
			Planes, BitCount       uint16
			Size, Offset           uint32
		}{dim, dim, 0, 0, 1, 32, uint32(len(payload)), uint32(offset)})
		data.Write(payload)
		offset += len(payload)
	}
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, [3]uint16{0, 1, uint16(len(pngs))})
	out.Write(entries.Bytes())
	out.Write(data.Bytes())
	return out.Bytes()
}

// dib is img as an icon bitmap: BITMAPINFOHEADER with doubled height, BGRA
// rows bottom-up, then an all-zero AND mask (the alpha channel does the work).
func dib(img image.Image) []byte {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	maskRow := ((w + 31) / 32) * 4
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, struct {
		Size                  uint32
		W, H                  int32
		Planes, BitCount      uint16
		Compression, ImgSize  uint32
		XPels, YPels          int32
		ClrUsed, ClrImportant uint32
	}{40, int32(w), int32(2 * h), 1, 32, 0, uint32(w*h*4 + maskRow*h), 0, 0, 0, 0})
	for y := h - 1; y >= 0; y-- {
		for x := 0; x < w; x++ {
			// Non-premultiplied BGRA, as Windows expects for 32-bit icons.
			c := color.NRGBAModel.Convert(img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y)).(color.NRGBA)
			b.Write([]byte{c.B, c.G, c.R, c.A})
		}
	}
	b.Write(make([]byte, maskRow*h))
	return b.Bytes()
}
