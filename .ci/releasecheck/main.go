// Command releasecheck asserts what .ci/release-check cannot see with
// dpkg-deb and tar: the Windows executable's PE header and resources, the
// members of a zip archive, and the keys of the macOS bundle's Info.plist.
//
//	go run ./.ci/releasecheck pe [-version 1.2.3.0] FILE.exe...
//	go run ./.ci/releasecheck zip FILE.zip MEMBER...
//	go run ./.ci/releasecheck plist Info.plist KEY=VALUE...
package main

import (
	"archive/zip"
	"bytes"
	"debug/pe"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: releasecheck pe|zip|plist FILE [ARGS...]")
		os.Exit(2)
	}
	var err error
	switch args := os.Args[2:]; os.Args[1] {
	case "pe":
		err = checkPEs(args)
	case "zip":
		err = checkZip(args[0], args[1:])
	case "plist":
		err = checkPlist(args[0], args[1:])
	default:
		err = fmt.Errorf("unknown check %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "releasecheck:", err)
		os.Exit(1)
	}
}

// Resource types (winuser.h).
const (
	rtIcon      = 3
	rtGroupIcon = 14
	rtVersion   = 16
	rtManifest  = 24
)

func checkPEs(args []string) error {
	fs := flag.NewFlagSet("pe", flag.ContinueOnError)
	wantVersion := fs.String("version", "", "the file version the version resource must carry, e.g. 1.2.3.0")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("pe: no files given")
	}
	for _, name := range fs.Args() {
		summary, err := checkPE(name, *wantVersion)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%s: %s\n", name, summary)
	}
	return nil
}

// checkPE requires a GUI-subsystem executable (no console window) whose
// resources hold an icon group, a manifest and a version.
func checkPE(name, wantVersion string) (string, error) {
	f, err := pe.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var subsystem uint16
	var dirs []pe.DataDirectory
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		subsystem, dirs = oh.Subsystem, oh.DataDirectory[:oh.NumberOfRvaAndSizes]
	case *pe.OptionalHeader32:
		subsystem, dirs = oh.Subsystem, oh.DataDirectory[:oh.NumberOfRvaAndSizes]
	default:
		return "", errors.New("no optional header")
	}
	if subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		return "", fmt.Errorf("subsystem is %d, want %d (windows GUI: build with -ldflags -H=windowsgui)", subsystem, pe.IMAGE_SUBSYSTEM_WINDOWS_GUI)
	}
	if len(dirs) <= pe.IMAGE_DIRECTORY_ENTRY_RESOURCE || dirs[pe.IMAGE_DIRECTORY_ENTRY_RESOURCE].Size == 0 {
		return "", errors.New("no resource directory (is rsrc_windows_*.syso missing?)")
	}
	rsrc, err := readResources(f, dirs[pe.IMAGE_DIRECTORY_ENTRY_RESOURCE].VirtualAddress)
	if err != nil {
		return "", err
	}
	groups, err := rsrc.leaves(rtGroupIcon)
	if err != nil || len(groups) == 0 {
		return "", fmt.Errorf("no RT_GROUP_ICON resource (%v)", err)
	}
	icons, err := rsrc.leaves(rtIcon)
	if err != nil {
		return "", err
	}
	sizes, err := iconSizes(groups[0], icons)
	if err != nil {
		return "", err
	}
	if manifests, err := rsrc.leaves(rtManifest); err != nil || len(manifests) == 0 {
		return "", fmt.Errorf("no RT_MANIFEST resource (%v)", err)
	}
	versions, err := rsrc.leaves(rtVersion)
	if err != nil || len(versions) == 0 {
		return "", fmt.Errorf("no RT_VERSION resource (%v)", err)
	}
	version, err := fileVersion(versions[0].data)
	if err != nil {
		return "", err
	}
	if wantVersion != "" && version != wantVersion {
		return "", fmt.Errorf("file version %s, want %s", version, wantVersion)
	}
	return fmt.Sprintf("windows GUI subsystem; icon with %s px; manifest; file version %s", sizes, version), nil
}

// resources is a PE resource section: a three-level tree (type, name,
// language) whose offsets count from the start of the directory.
type resources struct {
	data    []byte // from the root directory to the end of the section
	rvaBase uint32 // RVA of data[0]
}

func readResources(f *pe.File, rva uint32) (*resources, error) {
	for _, s := range f.Sections {
		if rva >= s.VirtualAddress && rva < s.VirtualAddress+s.VirtualSize {
			b, err := s.Data()
			if err != nil {
				return nil, err
			}
			return &resources{data: b[rva-s.VirtualAddress:], rvaBase: rva}, nil
		}
	}
	return nil, fmt.Errorf("resource directory RVA %#x is in no section", rva)
}

type resourceEntry struct {
	id     uint32 // an integer ID, or 1<<31|name offset
	offset uint32 // a subdirectory when the high bit is set, else a data entry
}

func (r *resources) entries(offset uint32) ([]resourceEntry, error) {
	if int(offset)+16 > len(r.data) {
		return nil, fmt.Errorf("resource directory at %#x is outside the section", offset)
	}
	n := int(binary.LittleEndian.Uint16(r.data[offset+12:])) + int(binary.LittleEndian.Uint16(r.data[offset+14:]))
	start := int(offset) + 16
	if start+8*n > len(r.data) {
		return nil, fmt.Errorf("resource directory at %#x has %d entries past the section's end", offset, n)
	}
	es := make([]resourceEntry, n)
	for i := range es {
		b := r.data[start+8*i:]
		es[i] = resourceEntry{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])}
	}
	return es, nil
}

type resourceLeaf struct {
	id   uint32 // the resource's name (ID) level
	data []byte
}

// leaves are every language version of every resource of one type.
func (r *resources) leaves(typ uint32) ([]resourceLeaf, error) {
	types, err := r.entries(0)
	if err != nil {
		return nil, err
	}
	var out []resourceLeaf
	for _, t := range types {
		if t.id != typ || t.offset&(1<<31) == 0 {
			continue
		}
		names, err := r.entries(t.offset &^ (1 << 31))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			langs, err := r.entries(n.offset &^ (1 << 31))
			if err != nil {
				return nil, err
			}
			for _, l := range langs {
				if int(l.offset)+8 > len(r.data) {
					return nil, fmt.Errorf("resource data entry at %#x is outside the section", l.offset)
				}
				rva := binary.LittleEndian.Uint32(r.data[l.offset:])
				size := binary.LittleEndian.Uint32(r.data[l.offset+4:])
				if rva < r.rvaBase || int(rva-r.rvaBase)+int(size) > len(r.data) {
					return nil, fmt.Errorf("resource data at RVA %#x is outside the section", rva)
				}
				out = append(out, resourceLeaf{n.id, r.data[rva-r.rvaBase : rva-r.rvaBase+size]})
			}
		}
	}
	return out, nil
}

// iconSizes reads a GRPICONDIR and checks that every image it lists is an
// RT_ICON resource, returning the image widths, e.g. "16, 32, 256".
func iconSizes(group resourceLeaf, icons []resourceLeaf) (string, error) {
	b := group.data
	if len(b) < 6 || binary.LittleEndian.Uint16(b[2:]) != 1 {
		return "", errors.New("RT_GROUP_ICON is not an icon directory")
	}
	n := int(binary.LittleEndian.Uint16(b[4:]))
	if n == 0 || len(b) < 6+14*n {
		return "", fmt.Errorf("RT_GROUP_ICON lists %d images in %d bytes", n, len(b))
	}
	var sizes []string
	for i := range n {
		e := b[6+14*i:]
		width, id := int(e[0]), uint32(binary.LittleEndian.Uint16(e[12:]))
		if width == 0 {
			width = 256
		}
		found := false
		for _, ic := range icons {
			found = found || ic.id == id
		}
		if !found {
			return "", fmt.Errorf("RT_GROUP_ICON lists image %d (%d px), which is not an RT_ICON resource", id, width)
		}
		sizes = append(sizes, fmt.Sprint(width))
	}
	return strings.Join(sizes, ", "), nil
}

// fileVersion reads VS_FIXEDFILEINFO's dwFileVersionMS/LS as a.b.c.d.
func fileVersion(b []byte) (string, error) {
	i := bytes.Index(b, []byte{0xbd, 0x04, 0xef, 0xfe}) // dwSignature 0xFEEF04BD
	if i < 0 || len(b) < i+16 {
		return "", errors.New("RT_VERSION has no VS_FIXEDFILEINFO")
	}
	ms, ls := binary.LittleEndian.Uint32(b[i+8:]), binary.LittleEndian.Uint32(b[i+12:])
	return fmt.Sprintf("%d.%d.%d.%d", ms>>16, ms&0xffff, ls>>16, ls&0xffff), nil
}

func checkZip(name string, members []string) error {
	r, err := zip.OpenReader(name)
	if err != nil {
		return err
	}
	defer r.Close()
	have := map[string]bool{}
	for _, f := range r.File {
		have[f.Name] = true
	}
	for _, m := range members {
		if !have[m] {
			return fmt.Errorf("%s does not hold %s", name, m)
		}
	}
	fmt.Printf("%s: holds %s\n", name, strings.Join(members, ", "))
	return nil
}

// checkPlist compares the top-level dict of an XML property list with
// KEY=VALUE pairs; <true/> and <false/> read as "true" and "false".
func checkPlist(name string, pairs []string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	dict, err := plistDict(b)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, p := range pairs {
		k, want, _ := strings.Cut(p, "=")
		got, ok := dict[k]
		if !ok {
			return fmt.Errorf("%s has no key %s", name, k)
		}
		if got != want {
			return fmt.Errorf("%s: %s is %q, want %q", name, k, got, want)
		}
	}
	fmt.Printf("%s: %d keys, %s\n", name, len(dict), strings.Join(pairs, ", "))
	return nil
}

// plistDict reads <plist><dict> of scalar values; nested containers are
// not used by Info.plist here and are refused.
func plistDict(b []byte) (map[string]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dict := map[string]string{}
	var path []string
	var key, text string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			text = ""
			if len(path) > 3 {
				return nil, fmt.Errorf("nested <%s> under key %s is not supported", t.Name.Local, key)
			}
		case xml.CharData:
			text += string(t)
		case xml.EndElement:
			if strings.Join(path, "/") == "plist/dict/"+t.Name.Local {
				switch t.Name.Local {
				case "key":
					if _, dup := dict[text]; dup {
						return nil, fmt.Errorf("key %s appears twice", text)
					}
					key = text
				case "true", "false":
					dict[key] = t.Name.Local
				default:
					dict[key] = text
				}
			}
			path = path[:len(path)-1]
		}
	}
	if len(dict) == 0 {
		return nil, errors.New("no <plist><dict> with keys")
	}
	return dict, nil
}
