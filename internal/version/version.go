// Package version says which build of Gatehouse is running, from the module version and VCS stamp the Go toolchain
// embeds in every binary (runtime/debug.ReadBuildInfo), so `go build` and `go install` need no extra flags.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Override, when set with -ldflags "-X github.com/gatehouse-dev/gatehouse/internal/version.Override=v1.2.3",
// replaces the module version (for release builds made outside a VCS checkout).
var Override string

// Info is what the build information says.
type Info struct {
	// Version is the module version ("v1.2.3", or a pseudo-version such as v0.0.0-20261201090419-0123456789ab+dirty
	// for a build from a checkout), or "devel" when the toolchain recorded none.
	Version string
	// Commit is the VCS revision, "" when the build was not made in a checkout.
	Commit string
	// Time is the commit time (RFC 3339), "" if unknown.
	Time string
	// Modified is true when the checkout had uncommitted changes.
	Modified bool
	// Go is the toolchain that built the binary.
	Go string
}

// Get reads the running binary's build information.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fromBuildInfo(nil)
	}
	return fromBuildInfo(bi)
}

// fromBuildInfo is Get's pure part.
func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: "devel"}
	if bi != nil {
		info.Go = bi.GoVersion
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if Override != "" {
		info.Version = Override
	}
	return info
}

// Version is the version alone, as HAR files and the status endpoint name it.
func Version() string { return Get().Version }

// String is the line `gatehouse version` prints: version, commit (12 digits, "+dirty" when modified), commit time
// and toolchain.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gatehouse %s", i.Version)
	var details []string
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if i.Modified {
			c += "+dirty"
		}
		details = append(details, "commit "+c)
	} else {
		details = append(details, "commit unknown")
	}
	if i.Time != "" {
		details = append(details, i.Time)
	}
	if i.Go != "" {
		details = append(details, i.Go)
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(details, ", "))
	return b.String()
}
