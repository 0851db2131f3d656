package controller

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
)

// Webhook verification errors. The handler answers 401 to each and
// triggers nothing.
var (
	ErrNoSignature  = errors.New("no signature")
	ErrBadSignature = errors.New("signature does not match")
)

// VerifyGitHub checks GitHub's X-Hub-Signature-256 header: "sha256=" and
// the hex HMAC-SHA256 of the raw body under the shared secret, compared in
// constant time.
func VerifyGitHub(secret, body []byte, header string) error {
	if header == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// VerifyGitLab checks GitLab's X-Gitlab-Token header, which carries the
// secret itself, in constant time.
func VerifyGitLab(secret []byte, header string) error {
	if header == "" {
		return ErrNoSignature
	}
	if subtle.ConstantTimeCompare([]byte(header), secret) != 1 {
		return ErrBadSignature
	}
	return nil
}
