package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileCacheLoadsWhatAFullLoadLoads changes the example fleet step by
// step and loads it each time with one FileCache and without: the fleet or
// the errors must be the same, and only changed files may be parsed again.
// Checks across documents must still see a change in another file, and a
// changed GBS file must still be read.
func TestFileCacheLoadsWhatAFullLoadLoads(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(exampleDir)); err != nil {
		t.Fatal(err)
	}
	edit := func(t *testing.T, name, old, new string) {
		t.Helper()
		file := filepath.Join(dir, name)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), old) {
			t.Fatalf("%s holds no %q", name, old)
		}
		if err := os.WriteFile(file, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gbs := filepath.Join(dir, "bitstreams", "genomics-smith-waterman-d5005.gbs")
	goodGBS, err := os.ReadFile(gbs)
	if err != nil {
		t.Fatal(err)
	}
	setGBS := func(t *testing.T, data []byte) {
		t.Helper()
		if err := os.WriteFile(gbs, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cache := NewFileCache()
	steps := []struct {
		name   string
		change func(t *testing.T)
		// parsed is how many YAML files the cached load may parse: the
		// changed ones and the file of Bitstreams, never cached.
		parsed  int
		wantErr string
	}{
		{"first load", func(*testing.T) {}, 8, ""},
		{"nothing changed", func(*testing.T) {}, 1, ""},
		{"one binding moved", func(t *testing.T) {
			edit(t, "bindings/genomics.yaml", "vm: genomics-01", "vm: genomics-02")
		}, 2, ""},
		{"a schema error", func(t *testing.T) {
			edit(t, "bindings/genomics.yaml", "function: pf", "function: pff")
		}, 2, "bindings/genomics.yaml:7:"},
		{"the error stays", func(*testing.T) {}, 1, "bindings/genomics.yaml:7:"},
		{"the error fixed", func(t *testing.T) {
			edit(t, "bindings/genomics.yaml", "function: pff", "function: pf")
		}, 2, ""},
		{"a node renamed under a cached binding", func(t *testing.T) {
			edit(t, "nodes/compute-02.yaml", "name: compute-02", "name: compute-20")
		}, 2, "compute-02"},
		{"the node back", func(t *testing.T) {
			edit(t, "nodes/compute-02.yaml", "name: compute-20", "name: compute-02")
		}, 2, ""},
		{"a GBS file changed", func(t *testing.T) {
			setGBS(t, append(append([]byte{}, goodGBS...), 0))
		}, 1, "sha256"},
		{"the GBS file back", func(t *testing.T) { setGBS(t, goodGBS) }, 1, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.change(t)
			full, fullErr := Load(dir)
			got, gotErr := LoadWith(dir, Options{Cache: cache})
			if hits, misses := cache.Stats(); misses != s.parsed || hits+misses != 8 {
				t.Errorf("%d files from the cache, %d parsed; want %d parsed of 8", hits, misses, s.parsed)
			}
			if errText(fullErr) != errText(gotErr) {
				t.Fatalf("the cached load says\n%v\nthe full load\n%v", gotErr, fullErr)
			}
			if s.wantErr == "" && gotErr != nil {
				t.Fatalf("unexpected error: %v", gotErr)
			}
			if !strings.Contains(errText(gotErr), s.wantErr) {
				t.Fatalf("error %v, want one naming %q", gotErr, s.wantErr)
			}
			if gotErr != nil {
				return
			}
			a, _ := json.Marshal(full)
			b, _ := json.Marshal(got)
			if string(a) != string(b) {
				t.Errorf("the cached load gave another fleet:\n%s\nthe full load:\n%s", b, a)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A load that starts while another holds the cache loads without it.
func TestFileCacheBusyLoadsWithout(t *testing.T) {
	cache := NewFileCache()
	if _, err := LoadWith(exampleDir, Options{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if !cache.begin() {
		t.Fatal("a cache no load holds is busy")
	}
	if cache.begin() {
		t.Fatal("the cache was given to two loads")
	}
	if _, err := LoadWith(exampleDir, Options{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if hits, misses := cache.Stats(); hits+misses != 0 {
		t.Errorf("the second load used the busy cache: %d hits, %d misses", hits, misses)
	}
	cache.end()
	if !cache.begin() {
		t.Fatal("the cache stays busy after its load ended")
	}
}
