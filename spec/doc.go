// Package spec is the desired state of an FPGA fleet: the model (nodes and
// their cards, bitstreams, bindings, the policy) and the loader that reads
// it from a repository of YAML files.
//
// Every file of a repository is read through a Repo, over an os.Root:
// symlinks stay inside, only regular files are read, and each file is
// bounded before and while it is read (Options for YAML, the Policy's
// Limits for GBS images). Repo.ReadBitstream reads an image to be sent to
// a card the same way.
//
// Load checks a repository in layers and reports every mistake at once,
// each at its file:line:col, causes first:
//
//   - the files: what is read (.fpgaopsignore, hidden files, symlinks)
//     and their sizes;
//   - YAML syntax, one document at a time, so a broken document does not
//     hide the ones after it, placed at the line and column of its cause;
//   - each document against the CUE definition its kind names (schema/),
//     which holds types, required fields, enums and value shapes;
//   - what needs more than the schema, in Go: each document's cards, cron
//     expressions and GBS file, then across documents unique names,
//     references, one binding per function, VF counts, one bitstream per
//     card, PR interface IDs.
//
// A document that fails one layer is still checked by the next ones on
// the fields that passed, and what follows from its mistakes is not
// reported again.
//
// The loader does no network I/O and never touches a card.
package spec
