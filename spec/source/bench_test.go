package source_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
)

// BenchmarkFetchUpToDate is the cost of a poll that finds nothing new,
// which is what most scheduled runs do.
func BenchmarkFetchUpToDate(b *testing.B) {
	r := gittest.NewRemote(b, "fleet")
	r.Commit("first", fleetOf(200), nil)
	for _, tr := range []struct {
		name string
		url  func() string
	}{
		{"file", r.FileURL},
		{"git-daemon", func() string { return gittest.StartDaemon(b, r.Root).URL + "fleet.git" }},
		{"http-backend", func() string { return gittest.StartHTTPBackend(b, r.Root, "", "") + "fleet.git" }},
	} {
		b.Run(tr.name, func(b *testing.B) {
			s, err := source.New(source.Config{URL: tr.url(), CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Fetch(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := s.Fetch(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFetchNewCommit is a poll that finds a new commit of a
// 200-file repository: shallow fetch and write-out.
func BenchmarkFetchNewCommit(b *testing.B) {
	r := gittest.NewRemote(b, "fleet")
	r.Commit("first", fleetOf(200), nil)
	s, err := source.New(source.Config{URL: r.FileURL(), CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		b.StopTimer()
		r.Commit(fmt.Sprint("change ", i), map[string][]byte{"nodes/node-00000.yaml": []byte(fmt.Sprint("rev ", i))}, nil)
		b.StartTimer()
		if _, err := s.Fetch(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// fleetOf is a repository of n small YAML files.
func fleetOf(n int) map[string][]byte {
	m := map[string][]byte{}
	for i := range n {
		m[fmt.Sprintf("nodes/node-%05d.yaml", i)] = []byte(fmt.Sprintf("apiVersion: fpgaops/v1\nkind: Node\nname: node-%05d\n", i))
	}
	return m
}
