package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Digest is a digest of the desired fleet (its canonical JSON): what a
// saved plan was made for, and what a journal's entries belong to.
func (f *Fleet) Digest() string {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(f); err != nil {
		panic(err) // plain data always marshals
	}
	return hex.EncodeToString(h.Sum(nil))
}
