package main

import (
	"runtime/debug"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	const rev = "7785696c0ffee0123456789abcdef0123456789a"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name                    string
		version, commit         string // -ldflags -X
		info                    *debug.BuildInfo
		wantVersion, wantCommit string
	}{
		{"release build (goreleaser -X)", "1.2.3", "7785696", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, "1.2.3", "7785696"},
		{"go install module@version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "1.4.0", ""},
		{"go build at a tag (Go 1.24 VCS stamping)", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs("false")}, "1.4.0", "7785696c0ffe"},
		{"go build with local changes", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.1-0.20261130235959-7785696c0ffe+dirty"}, Settings: vcs("true")}, "1.4.1-0.20261130235959-7785696c0ffe+dirty", "7785696c0ffe-dirty"},
		{"go build -buildvcs=false", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", ""},
		{"no build info", "", "", nil, "dev", ""},
		{"only the version stamped", "2.0.0", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, "2.0.0", "7785696c0ffe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func() (*debug.BuildInfo, bool) { return tt.info, tt.info != nil }
			v, c := buildVersion(tt.version, tt.commit, read)
			if v != tt.wantVersion || c != tt.wantCommit {
				t.Errorf("buildVersion(%q, %q) = %q, %q; want %q, %q", tt.version, tt.commit, v, c, tt.wantVersion, tt.wantCommit)
			}
		})
	}
}
