package libvirttest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Procedure numbers of libvirt's remote protocol (remote_protocol.x) that
// tests look for.
const (
	ProcDomainAttachDevice      = 8
	ProcDomainCreate            = 9
	ProcDomainDefineXML         = 11
	ProcDomainDestroy           = 12
	ProcDomainDetachDevice      = 13
	ProcDomainShutdown          = 33
	ProcDomainUndefine          = 35
	ProcDomainAttachDeviceFlags = 160
	ProcDomainDetachDeviceFlags = 161
	ProcDomainUpdateDeviceFlags = 174
	ProcDomainUndefineFlags     = 231
	ProcDomainDefineXMLFlags    = 350
	ProcDomainDetachDeviceAlias = 392
)

// Mutating reports whether a procedure changes a domain's definition or
// its devices.
func Mutating(proc uint32) bool {
	switch proc {
	case ProcDomainAttachDevice, ProcDomainDefineXML, ProcDomainDetachDevice,
		ProcDomainUndefine, ProcDomainAttachDeviceFlags, ProcDomainDetachDeviceFlags,
		ProcDomainUpdateDeviceFlags, ProcDomainUndefineFlags, ProcDomainDefineXMLFlags,
		ProcDomainDetachDeviceAlias:
		return true
	}
	return false
}

const (
	remoteProgram = 0x20008086
	typeCall      = 0
	typeReply     = 1
	statusOK      = 0
	// The flag bit of VIR_DOMAIN_AFFECT_LIVE.
	affectLive = 1
)

// Call is one remote procedure call a client made through the proxy.
type Call struct {
	Proc uint32
	// Domain, XML and Flags are decoded for the device calls
	// (attach/detach with flags), empty otherwise.
	Domain string
	XML    string
	Flags  uint32
	// Emulated is true when the proxy answered the call itself.
	Emulated bool
}

// Proxy sits between clients and a daemon on the RPC protocol: it passes
// every packet through and records each call. With EmulateLive set it
// answers live device attach and detach calls itself with success instead
// of passing them on, which stands in for a hypervisor driver where the
// test driver has none: the recorded calls show what a client sent.
type Proxy struct {
	// Socket is where clients connect.
	Socket string

	upstream string
	ln       net.Listener

	mu          sync.Mutex
	emulateLive bool
	stall       bool
	calls       []Call
	conns       []net.Conn
	accepted    int
	wg          sync.WaitGroup
}

// NewProxy starts a proxy in front of the daemon's socket; it stops when
// the test ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "lvp")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Socket: filepath.Join(dir, "proxy-sock"), upstream: upstream}
	p.ln, err = net.Listen("unix", p.Socket)
	if err != nil {
		t.Fatal(err)
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.ln.Close()
		p.DropConnections()
		p.wg.Wait()
		os.RemoveAll(dir)
	})
	return p
}

// EmulateLive turns answering live device calls on or off.
func (p *Proxy) EmulateLive(on bool) {
	p.mu.Lock()
	p.emulateLive = on
	p.mu.Unlock()
}

// Stall makes the proxy swallow calls without answering, as a hung
// daemon would, or stops that.
func (p *Proxy) Stall(on bool) {
	p.mu.Lock()
	p.stall = on
	p.mu.Unlock()
}

// Calls returns the calls recorded so far.
func (p *Proxy) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Call(nil), p.calls...)
}

// Mutations returns the recorded calls that change domains.
func (p *Proxy) Mutations() []Call {
	var out []Call
	for _, c := range p.Calls() {
		if Mutating(c.Proc) {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets the recorded calls.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.calls = nil
	p.mu.Unlock()
}

// Accepted is how many client connections the proxy has taken.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// DropConnections closes every open client and daemon connection, as a
// daemon restart or a network fault would.
func (p *Proxy) DropConnections() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("unix", p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.accepted++
		p.mu.Unlock()
		var wmu sync.Mutex // guards writes to client
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer server.Close()
			defer client.Close()
			p.fromClient(client, server, &wmu)
		}()
		go func() {
			defer p.wg.Done()
			defer client.Close()
			for {
				pkt, err := readPacket(server)
				if err != nil {
					return
				}
				wmu.Lock()
				_, err = client.Write(pkt)
				wmu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

func (p *Proxy) fromClient(client, server net.Conn, wmu *sync.Mutex) {
	for {
		pkt, err := readPacket(client)
		if err != nil {
			return
		}
		h := header(pkt)
		if h.program != remoteProgram || h.typ != typeCall {
			if _, err := server.Write(pkt); err != nil {
				return
			}
			continue
		}
		call := Call{Proc: h.proc}
		if h.proc == ProcDomainAttachDeviceFlags || h.proc == ProcDomainDetachDeviceFlags {
			call.Domain, call.XML, call.Flags, _ = decodeDeviceCall(pkt[28:])
		}
		p.mu.Lock()
		call.Emulated = p.emulateLive && call.Flags&affectLive != 0 &&
			(h.proc == ProcDomainAttachDeviceFlags || h.proc == ProcDomainDetachDeviceFlags)
		p.calls = append(p.calls, call)
		stall := p.stall
		p.mu.Unlock()
		if stall {
			continue
		}
		if call.Emulated {
			wmu.Lock()
			_, err = client.Write(reply(h))
			wmu.Unlock()
		} else {
			_, err = server.Write(pkt)
		}
		if err != nil {
			return
		}
	}
}

type pktHeader struct {
	program, version, proc, typ, serial, status uint32
}

func header(pkt []byte) pktHeader {
	u := func(i int) uint32 { return binary.BigEndian.Uint32(pkt[4+4*i:]) }
	return pktHeader{u(0), u(1), u(2), u(3), u(4), u(5)}
}

func readPacket(r io.Reader) ([]byte, error) {
	var lenb [4]byte
	if _, err := io.ReadFull(r, lenb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenb[:])
	if n < 28 || n > 32<<20 {
		return nil, fmt.Errorf("bad packet length %d", n)
	}
	pkt := make([]byte, n)
	copy(pkt, lenb[:])
	if _, err := io.ReadFull(r, pkt[4:]); err != nil {
		return nil, err
	}
	return pkt, nil
}

// reply is an empty successful reply to the call h.
func reply(h pktHeader) []byte {
	b := make([]byte, 28)
	for i, v := range []uint32{28, h.program, h.version, h.proc, typeReply, h.serial, statusOK} {
		binary.BigEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// decodeDeviceCall decodes the arguments of
// remote_domain_{attach,detach}_device_flags_args: a nonnull domain
// (string name, 16-byte UUID, int id), a string XML and unsigned flags.
func decodeDeviceCall(b []byte) (dom, xml string, flags uint32, err error) {
	d := xdr{b: b}
	dom = d.str()
	d.skip(16 + 4)
	xml = d.str()
	flags = d.u32()
	return dom, xml, flags, d.err
}

type xdr struct {
	b   []byte
	err error
}

func (d *xdr) u32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.err = errors.New("short XDR")
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *xdr) skip(n int) {
	if d.err != nil || len(d.b) < n {
		d.err = errors.New("short XDR")
		return
	}
	d.b = d.b[n:]
}

func (d *xdr) str() string {
	n := int(d.u32())
	if d.err != nil || len(d.b) < n {
		d.err = errors.New("short XDR")
		return ""
	}
	s := string(d.b[:n])
	d.skip((n + 3) &^ 3)
	return s
}
