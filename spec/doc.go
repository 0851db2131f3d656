// Package spec is the desired state of an FPGA fleet: the model (nodes and
// their cards, bitstreams, bindings, the policy) and the loader that reads
// it from a repository of YAML files.
//
// Load checks a repository in three layers and reports every mistake at
// once, each at its file:line:col:
//
//   - YAML syntax, one document at a time, so a broken document does not
//     hide the ones after it;
//   - each document against the CUE definition its kind names (schema/),
//     which holds types, required fields, enums and value shapes;
//   - what needs more than one document or a file, in Go: unique names,
//     references, one binding per function, VF counts, one bitstream per
//     card, PR interface IDs, and the GBS files with their digests.
//
// The loader does no network I/O and never touches a card.
package spec
