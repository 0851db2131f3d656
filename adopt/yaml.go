package adopt

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/fpgaops/fpgaops/spec"
	"gopkg.in/yaml.v3"
)

// bindingDoc and bitstreamDoc give the documents' fields the order of
// docs/format.md.
type bindingDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Name       string `yaml:"name"`
	Node       string `yaml:"node"`
	FPGA       string `yaml:"fpga"`
	Function   string `yaml:"function"`
	VM         string `yaml:"vm"`
	Bitstream  string `yaml:"bitstream"`
}

type bitstreamDoc struct {
	APIVersion  string `yaml:"apiVersion"`
	Kind        string `yaml:"kind"`
	Name        string `yaml:"name"`
	File        string `yaml:"file"`
	SHA256      string `yaml:"sha256"`
	InterfaceID string `yaml:"interfaceID,omitempty"`
	AFUID       string `yaml:"afuID"`
}

// Placeholders of a stub: validate refuses both, quoting them, so its
// errors say what to put there.
const (
	stubFile   = "FILL-IN/the-gbs-file-of-afu-%s.gbs"
	stubSHA256 = "FILL-IN-the-sha256-of-that-gbs-file"
)

// BindingsYAML is the bindings as one file of documents.
func (r *Result) BindingsYAML() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Written by fpgaops import: the functions the VMs held when the fleet was\n# observed. Edit freely; a later import leaves declared functions alone.\n")
	for _, b := range r.Bindings {
		if err := writeDoc(&buf, "", bindingDoc{spec.APIVersion, spec.KindBinding, b.Name, b.Node, b.FPGA, b.Function.String(), b.VM, b.Bitstream}); err != nil {
			return nil, fmt.Errorf("binding %s: %w", b.Name, err)
		}
	}
	return buf.Bytes(), nil
}

// StubsYAML is the stubs as one file of documents, each with a comment
// saying which cards run its AFU and what to fill in; bindingsFile is
// where the bindings that name them are.
func (r *Result) StubsYAML(bindingsFile string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Written by fpgaops import: the AFUs cards run that no Bitstream document\n# names. fpgaops validate fails until each is filled in.\n")
	for _, s := range r.Stubs {
		comment := fmt.Sprintf(`No Bitstream document names AFU %s, which these cards run:
  %s
Fill in: file, the repository path of the GBS image that loads this AFU
(or replace file with its url), and sha256, that file's SHA-256
(sha256sum FILE). Rename the document if you like, and the bindings in
%s that name it. Move it to a file of its own before
another 'fpgaops import --force', which replaces this file.`, s.AFUID, strings.Join(s.Cards, ", "), bindingsFile)
		doc := bitstreamDoc{spec.APIVersion, spec.KindBitstream, s.Name, fmt.Sprintf(stubFile, s.AFUID), stubSHA256, s.InterfaceID, s.AFUID}
		if err := writeDoc(&buf, comment, doc); err != nil {
			return nil, fmt.Errorf("bitstream %s: %w", s.Name, err)
		}
	}
	return buf.Bytes(), nil
}

func writeDoc(buf *bytes.Buffer, comment string, doc any) error {
	var n yaml.Node
	if err := n.Encode(doc); err != nil {
		return err
	}
	n.HeadComment = comment
	out, err := yaml.Marshal(&n)
	if err != nil {
		return err
	}
	buf.WriteString("---\n")
	buf.Write(out)
	return nil
}
