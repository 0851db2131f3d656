package source

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrUntrusted marks every verification failure: the revision is rejected
// because its commit is not signed by a key of the keyring.
var ErrUntrusted = errors.New("verification failed")

// ErrRejected marks a revision that was fetched but holds no fleet where
// the source looks for one (a --path the commit does not hold). Like an
// ErrUntrusted, fetching again does not cure it: only a new revision, or
// another --path, does.
var ErrRejected = errors.New("revision rejected")

// ErrUnsigned is returned for a commit without a signature when one is
// required; it is also an ErrUntrusted.
var ErrUnsigned = fmt.Errorf("%w: commit is not signed", ErrUntrusted)

// checkKeyring makes sure the keyring parses and holds at least one key,
// so a broken keyring file is reported at start and not as a rejected
// revision.
func checkKeyring(armored string) error {
	ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil {
		return err
	}
	if len(ring) == 0 {
		return errors.New("no keys")
	}
	return nil
}

// verify checks the commit's signature against the keyring and returns the
// signing key's fingerprint.
func verify(c *object.Commit, keyring string) (string, error) {
	if strings.TrimSpace(c.PGPSignature) == "" {
		return "", ErrUnsigned
	}
	e, err := c.Verify(keyring)
	if err != nil {
		return "", fmt.Errorf("%w: signature not made by a trusted key: %w", ErrUntrusted, err)
	}
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)), nil
}
