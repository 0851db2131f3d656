package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.0", Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name          string
		ver, rev      string
		bi            *debug.BuildInfo
		want          buildInfo
		wantGoRuntime bool
	}{
		{"set by make", "v0.4.0-3-g0123456", "0123456789abcdef0123456789abcdef01234567", stamped,
			buildInfo{Version: "v0.4.0-3-g0123456", Commit: "0123456789abcdef0123456789abcdef01234567", GoVersion: "go1.26.0"}, false},
		{"plain go build with VCS stamp", "", "", stamped,
			buildInfo{Version: "devel", Commit: "0123456789abcdef0123456789abcdef01234567", Modified: true, GoVersion: "go1.26.0"}, false},
		{"plain go build without VCS stamp", "", "", &debug.BuildInfo{GoVersion: "go1.26.0"},
			buildInfo{Version: "devel", GoVersion: "go1.26.0"}, false},
		{"no build info", "", "", nil, buildInfo{Version: "devel"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describeBuild(tt.ver, tt.rev, tt.bi)
			want := tt.want
			want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if tt.wantGoRuntime {
				want.GoVersion = runtime.Version()
			}
			if got != want {
				t.Errorf("describeBuild = %+v, want %+v", got, want)
			}
		})
	}
}
