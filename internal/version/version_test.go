package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T09:00:00Z"},
		{Key: "vcs.modified", Value: "true"}}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "gatehouse devel (commit unknown)"},
		{"go build in a checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201090000-0123456789ab+dirty"}, Settings: vcs},
			"gatehouse v0.0.0-20261201090000-0123456789ab+dirty (commit 0123456789ab+dirty, 2026-12-01T09:00:00Z, go1.26.8)"},
		{"devel without vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "gatehouse devel (commit unknown, go1.26.8)"},
		{"go install of a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}, "gatehouse v1.4.0 (commit unknown, go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromBuildInfo(tt.bi).String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	Override = "v9.9.9"
	defer func() { Override = "" }()
	if got := fromBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}}).Version; got != "v9.9.9" {
		t.Errorf("Override ignored: %q", got)
	}
}
