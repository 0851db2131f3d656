package spec

// Node returns the node with this name.
func (f *Fleet) Node(name string) (*Node, bool) {
	for i := range f.Nodes {
		if f.Nodes[i].Name == name {
			return &f.Nodes[i], true
		}
	}
	return nil, false
}

// Bitstream returns the bitstream with this name.
func (f *Fleet) Bitstream(name string) (*Bitstream, bool) {
	for i := range f.Bitstreams {
		if f.Bitstreams[i].Name == name {
			return &f.Bitstreams[i], true
		}
	}
	return nil, false
}

// FPGA returns the node's card in this slot.
func (n *Node) FPGA(slot string) (*FPGA, bool) {
	for i := range n.FPGAs {
		if n.FPGAs[i].Slot == slot {
			return &n.FPGAs[i], true
		}
	}
	return nil, false
}

// FPGACount is the number of cards across the fleet.
func (f *Fleet) FPGACount() int {
	n := 0
	for _, node := range f.Nodes {
		n += len(node.FPGAs)
	}
	return n
}
