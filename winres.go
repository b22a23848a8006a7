package main

// The Windows icon, manifest and version resource come from
// packaging/windows/winres.json, compiled to rsrc_windows_{amd64,arm64}.syso,
// which go build links into ccmux.exe. The .syso files are committed so a
// plain go build has them: rerun go generate after changing the JSON or the
// icon. Release builds rewrite them with the tag's version (.goreleaser.yaml).
//go:generate go run github.com/tc-hib/go-winres@v0.3.3 make --in packaging/windows/winres.json --out rsrc --arch amd64,arm64
