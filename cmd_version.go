package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version and commit are set by release builds with
// -ldflags "-X main.version=1.2.3 -X main.commit=…"; other builds (go build,
// go install) leave them empty and init reads them from the build info.
var version, commit string

func init() { version, commit = buildVersion(version, commit, debug.ReadBuildInfo) }

// buildVersion is the version and commit to show: the stamped ones first,
// else what the go command recorded (a module version, or since Go 1.24 the
// VCS tag or pseudo-version, and vcs.revision), else "dev".
func buildVersion(version, commit string, readBuildInfo func() (*debug.BuildInfo, bool)) (string, string) {
	if info, ok := readBuildInfo(); ok {
		if version == "" && info.Main.Version != "(devel)" {
			version = info.Main.Version
		}
		if commit == "" {
			commit = vcsCommit(info.Settings)
		}
	}
	if version == "" {
		version = "dev"
	}
	return strings.TrimPrefix(version, "v"), commit
}

// vcsCommit is the short revision the go command stamped, marked when the
// tree had uncommitted changes.
func vcsCommit(settings []debug.BuildSetting) string {
	var rev string
	var modified bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && modified {
		rev += "-dirty"
	}
	return rev
}

func runVersion(e *env, args []string) error {
	if err := parseFlags(flags("version"), args); err != nil {
		return err
	}
	if commit == "" {
		fmt.Fprintf(e.stdout, "ccmux %s\n", version)
		return nil
	}
	fmt.Fprintf(e.stdout, "ccmux %s (commit %s)\n", version, commit)
	return nil
}
