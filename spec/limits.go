package spec

// Limits on what the loader reads. docs/format.md explains each one and
// where it is set.
const (
	// DefaultMaxYAMLBytes bounds one YAML file. yaml.v3 holds a parsed
	// file as a tree some 40 to 80 times its size, so 4 MiB may take
	// 300 MB; the largest file of a generated 10,000-node fleet is about
	// 1.3 KB, and 4 MiB holds some 20,000 bindings.
	DefaultMaxYAMLBytes = 4 << 20
	// DefaultMaxDocumentValues bounds the values (mappings, lists,
	// scalars) of one document, counted with its aliases expanded. A node
	// with 16 cards is about 100.
	DefaultMaxDocumentValues = 10000
	// DefaultMaxBitstreamBytes bounds a GBS file: the node agent's own
	// default limit on an image (agent.DefaultMaxImageBytes), so that an
	// image the agents would refuse is refused by validate. Real PR
	// images are tens of megabytes.
	DefaultMaxBitstreamBytes = 256 << 20
	// maxIgnoreBytes bounds .fpgaopsignore.
	maxIgnoreBytes = 1 << 20
)

// Options tune the loader. Zero fields take the defaults. They bound
// reading the repository itself, the Policy document included, which is
// why they are the loader's and not the Policy's; the GBS limit is the
// Policy's (Limits.MaxBitstreamBytes).
type Options struct {
	// MaxYAMLBytes bounds each YAML file: larger ones are refused
	// before they are read. Default DefaultMaxYAMLBytes.
	MaxYAMLBytes int64
	// MaxDocumentValues bounds each document's values, aliases
	// expanded. Default DefaultMaxDocumentValues.
	MaxDocumentValues int
	// Cache, when set, keeps what each file gave for the next load: see
	// FileCache.
	Cache *FileCache
}

func (o Options) withDefaults() Options {
	if o.MaxYAMLBytes <= 0 {
		o.MaxYAMLBytes = DefaultMaxYAMLBytes
	}
	if o.MaxDocumentValues <= 0 {
		o.MaxDocumentValues = DefaultMaxDocumentValues
	}
	return o
}

// Limits are the limits a Policy sets for its fleet.
type Limits struct {
	// MaxBitstreamBytes bounds each GBS file of the repository, checked
	// by the loader and by whoever reads an image to send it
	// (Repo.ReadBitstream). Zero means DefaultMaxBitstreamBytes. Set it
	// to what the fleet's agents accept (fpgaops agent
	// --max-image-bytes).
	MaxBitstreamBytes int64 `json:"maxBitstreamBytes,omitempty"`
}

// MaxBitstreamBytes is the largest GBS file the fleet accepts: the
// policy's limit, or the default.
func (p Policy) MaxBitstreamBytes() int64 {
	if p.Limits.MaxBitstreamBytes > 0 {
		return p.Limits.MaxBitstreamBytes
	}
	return DefaultMaxBitstreamBytes
}
