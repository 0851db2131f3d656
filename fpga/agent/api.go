// Package agent is the node agent's HTTP API over an fpga.Host (its
// client is providers/agent). The agent is what `fpgaops agent` serves on
// every compute node: the node's inventory, programming a card with a
// bitstream named by its sha256, and setting a card's VFs. The same
// handler serves every node of the simulated fleet.
//
// The API is versioned by path (/v1/...), speaks JSON, and answers errors
// as {"error": {"code": ..., "message": ...}}. It never programs an image
// whose digest it has not verified, never holds an unverified image in
// memory, fetches images only from hosts it was told to trust, and never
// trusts a client without a certificate unless the operator asked for
// plain HTTP on loopback. With a Fence, it refuses a request whose
// fencing token is older than the newest it has seen: controllers that
// share a fleet through etcd stamp every request with their leader
// term's token, so that a leader that lost its term cannot change a card
// behind the new one's back.
package agent

import (
	"fmt"

	"github.com/fpgaops/fpgaops/fpga"
)

// Paths of the v1 API, relative to a node's endpoint.
const (
	PathInventory = "/v1/inventory"
	// PathProgram and PathVFs take the card's PF address in place of {pci}.
	PathProgram = "/v1/cards/{pci}/program"
	PathVFs     = "/v1/cards/{pci}/vfs"
)

// Inventory is the answer to GET /v1/inventory.
type Inventory struct {
	Devices []fpga.Device `json:"devices"`
}

// ProgramRequest is the JSON body of POST /v1/cards/{pci}/program when the
// agent fetches the image itself. An uploaded image is sent as the raw
// body (application/octet-stream) with its digest in the sha256 query
// parameter instead.
type ProgramRequest struct {
	SHA256 string `json:"sha256"`
	URL    string `json:"url"`
	Force  bool   `json:"force,omitempty"`
}

// ProgramResult is the answer to a successful program: the card as read
// back afterwards, so the caller can check the AFU ID.
type ProgramResult struct {
	Device fpga.Device `json:"device"`
}

// VFsRequest is the body of PUT /v1/cards/{pci}/vfs.
type VFsRequest struct {
	Count int `json:"count"`
}

// Error codes the API answers with.
const (
	CodeBadRequest     = "bad_request"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeDigestMismatch = "digest_mismatch"
	CodeTooLarge       = "too_large"
	CodeConflict       = "conflict"
	CodeFetchFailed    = "fetch_failed"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
)

// ErrorBody is how every error is answered.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error is an API error: an HTTP status, a stable code and a message. A
// Host may return one (wrapped or not) to choose the answer; the client
// returns one for every error answer it gets.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is the message alone: callers add what they were doing.
func (e *Error) Error() string { return e.Message }

// Errorf makes an API error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNoCard is returned by a Host for a PCI address that names no card.
var ErrNoCard = fpga.ErrNoCard
