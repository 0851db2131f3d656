package bitstream

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// Section names of an OpenCL AOCX file: the outer ELF holds the FPGA
// binary, itself an ELF, which holds the gzipped GBS.
const (
	aocxFPGABin = ".acl.fpga.bin"
	aocxGBS     = ".acl.gbs.gz"
	// maxGBS bounds the unzipped image, so that a crafted file cannot make
	// the parser allocate without limit.
	maxGBS = 1 << 30
)

// ErrAOCX is wrapped by every AOCX parse error.
var ErrAOCX = errors.New("bad AOCX file")

// IsAOCX reports whether data starts like an ELF file, as AOCX files do.
func IsAOCX(data []byte) bool { return bytes.HasPrefix(data, []byte(elf.ELFMAG)) }

// ParseAOCX extracts and parses the GBS image inside an AOCX file. It
// returns the parsed image and the GBS bytes (what Payload and the digest
// of the programmed image refer to).
func ParseAOCX(data []byte) (*File, []byte, error) {
	bin, err := elfSection(data, aocxFPGABin)
	if err != nil {
		return nil, nil, err
	}
	gz, err := elfSection(bin, aocxGBS)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", aocxFPGABin, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrAOCX, aocxGBS, err)
	}
	gbs, err := io.ReadAll(io.LimitReader(zr, maxGBS+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrAOCX, aocxGBS, err)
	}
	if len(gbs) > maxGBS {
		return nil, nil, fmt.Errorf("%w: %s unzips to more than %d bytes", ErrAOCX, aocxGBS, maxGBS)
	}
	f, err := Parse(gbs)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", aocxGBS, err)
	}
	return f, gbs, nil
}

func elfSection(data []byte, name string) ([]byte, error) {
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAOCX, err)
	}
	defer ef.Close()
	s := ef.Section(name)
	if s == nil {
		return nil, fmt.Errorf("%w: no %s section", ErrAOCX, name)
	}
	if s.Size > uint64(len(data)) {
		return nil, fmt.Errorf("%w: section %s is larger than the file", ErrAOCX, name)
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%w: section %s: %v", ErrAOCX, name, err)
	}
	return b, nil
}

// ParseImage parses a GBS file, or the GBS inside an AOCX file. It
// returns the parsed image and the GBS bytes.
func ParseImage(data []byte) (*File, []byte, error) {
	if IsAOCX(data) {
		return ParseAOCX(data)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, nil, err
	}
	return f, data, nil
}
