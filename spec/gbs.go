package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/fpgaops/fpgaops/bitstream"
)

// headBytes is as much of a GBS file as its header and metadata can take.
const headBytes = bitstream.HeaderSize + bitstream.MaxMetadataLen

// inspectGBS checks a GBS file of the repository of at most max bytes:
// its header and metadata from its first bytes, its digest and size read
// through once, never holding more than the head in memory.
func (r *Repo) inspectGBS(name string, max int64) (*bitstream.File, error) {
	f, size, err := r.open(name, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head, err := readAll(name, io.LimitReader(f, headBytes), min(size, headBytes), headBytes)
	if err != nil {
		return nil, err
	}
	// The head is the whole file or more than the metadata can take, so
	// Parse checks the metadata length against the file as it would the
	// whole file.
	gbs, err := bitstream.Parse(head)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(head)
	n, err := io.Copy(h, io.LimitReader(f, max+1-int64(len(head))))
	if err != nil {
		return nil, cannotRead(name, err)
	}
	total := int64(len(head)) + n
	if total > max {
		return nil, errTooLarge(name, total, max)
	}
	gbs.Size, gbs.SHA256 = total, hex.EncodeToString(h.Sum(nil))
	return gbs, nil
}
