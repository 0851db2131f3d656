//go:build unix

package spec_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// genFleet writes a generated fleet of n nodes with 4 cards each.
func genFleet(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	if err := fleetgen.Generate(fleetgen.Options{Dir: dir, Nodes: n, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkValidate10k loads and checks a 10,000-node fleet (40,000 cards
// and bindings). Besides the wall time it reports:
//
//   - x-yaml: its time over a plain yaml.v3 decode of the same files
//     (what BenchmarkYAMLDecode10k does), measured in the same run;
//   - cpu-ms/op: CPU time (user and system) per load, which a busy machine
//     inflates less than the wall time;
//   - maxrss-MB: the test process's peak resident memory.
func BenchmarkValidate10k(b *testing.B) {
	dir := genFleet(b, 10000)
	plain := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		if err := decodeAll(dir); err != nil {
			b.Fatal(err)
		}
		plain = min(plain, time.Since(start))
	}
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f, err := spec.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Bindings) != 40000 || f.FPGACount() != 40000 {
			b.Fatalf("%d bindings, %d FPGAs", len(f.Bindings), f.FPGACount())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(plain), "x-yaml")
	b.ReportMetric(float64(plain.Milliseconds()), "yaml-ms")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(maxRSS(b))/(1<<20), "maxrss-MB")
}

func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSS is the process's peak resident set in bytes (Linux reports KiB).
func maxRSS(b *testing.B) int64 {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return int64(ru.Maxrss) * 1024
}

// BenchmarkYAMLDecode10k decodes the files of a 10,000-node fleet into
// plain Go maps with yaml.v3, with the loader's parallelism: the floor any
// YAML loader stands on.
func BenchmarkYAMLDecode10k(b *testing.B) {
	dir := genFleet(b, 10000)
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := decodeAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func decodeAll(dir string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	var next atomic.Int64
	var g errgroup.Group
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(files) {
					return nil
				}
				data, err := os.ReadFile(files[i])
				if err != nil {
					return err
				}
				dec := yaml.NewDecoder(bytes.NewReader(data))
				for {
					var doc map[string]any
					if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						return err
					}
				}
			}
		})
	}
	return g.Wait()
}

// BenchmarkValidate1k is BenchmarkValidate10k at a tenth of the size, for
// quick profiles.
func BenchmarkValidate1k(b *testing.B) {
	dir := genFleet(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := spec.Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate10kOneFileChanged loads the 10,000-node fleet again
// after one node's file changed (a binding moved to the node's other
// image), with the FileCache of the loads before: what the controller pays
// for a one-binding commit. x-full is its time over a full load measured
// in the same run.
func BenchmarkValidate10kOneFileChanged(b *testing.B) {
	dir := genFleet(b, 10000)
	file := filepath.Join(dir, "nodes", "node-00001.yaml")
	orig, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	other := bytes.Replace(orig, []byte("bitstream: d5005-afu-1"), []byte("bitstream: d5005-afu-0"), 1)
	if bytes.Equal(other, orig) {
		b.Fatal("the generated node file changed shape")
	}
	start := time.Now()
	if _, err := spec.Load(dir); err != nil {
		b.Fatal(err)
	}
	full := time.Since(start)
	cache := spec.NewFileCache()
	if _, err := spec.LoadWith(dir, spec.Options{Cache: cache}); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		content := orig
		if i%2 == 0 {
			content = other
		}
		if err := os.WriteFile(file, content, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := spec.LoadWith(dir, spec.Options{Cache: cache}); err != nil {
			b.Fatal(err)
		}
		if hits, misses := cache.Stats(); misses != 2 || hits < 9000 {
			b.Fatalf("%d files from the cache, %d parsed; want all but the changed one and the bitstreams file from the cache", hits, misses)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(full), "x-full")
	b.ReportMetric(float64(full.Milliseconds()), "full-ms")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
