package spec

import (
	"crypto/sha256"
	"sync"
)

// FileCache keeps what loading each YAML file gave (its documents,
// decoded and checked on their own, and its errors), by the file's path
// and content, so that loading the repository again parses and checks only
// the files that changed: the controller keeps one across runs, and a
// commit that changes one binding of a 10,000-node fleet costs one file's
// parse. What relates documents (references, uniqueness, the GBS files) is
// checked on every load. A file that declares a Bitstream is never taken
// from the cache, since checking it reads its GBS file, which may have
// changed. The cache holds the files of the last load only. One load at a
// time uses it: a load that starts while another uses it goes without.
type FileCache struct {
	mu         sync.Mutex
	busy       bool
	last, this map[cacheKey]fileResult
	// hits and misses count the files of the last load.
	hits, misses int
}

type cacheKey struct {
	file string
	sum  [sha256.Size]byte
	opts Options
}

// NewFileCache is an empty cache.
func NewFileCache() *FileCache { return &FileCache{} }

// Stats says how many files the last load took from the cache and how
// many it parsed.
func (c *FileCache) Stats() (hits, misses int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// begin takes the cache for a load; false when another load has it.
func (c *FileCache) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy {
		return false
	}
	c.busy = true
	c.this, c.hits, c.misses = map[cacheKey]fileResult{}, 0, 0
	return true
}

// end keeps only what this load used, and gives the cache back.
func (c *FileCache) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last, c.this, c.busy = c.this, nil, false
}

func (c *FileCache) get(k cacheKey) (fileResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, ok := c.last[k]
	if ok {
		c.this[k] = res
		c.hits++
	} else {
		c.misses++
	}
	return res, ok
}

func (c *FileCache) put(k cacheKey, res fileResult) {
	for _, d := range res.docs {
		if d.kind == KindBitstream {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.this[k] = res
}
