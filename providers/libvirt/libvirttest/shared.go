package libvirttest

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
)

const (
	procConnectOpen  = 1
	procConnectClose = 2
	statusError      = 1
)

// Shared serves one test driver connection to many clients. The test
// driver forgets a test:///file fleet's state when the connection that
// opened it closes, so separate runs of a command (plan, apply, plan
// again) would each see the file afresh; through a Shared socket they all
// use one connection, opened once, and see each other's changes as they
// would on a real hypervisor. Clients' own open and close calls are
// answered here; every other call goes to the daemon with its serial
// renumbered.
type Shared struct {
	// Socket is where clients connect; the URI they name is ignored.
	Socket string
	// URI is the fleet the shared connection opened.
	URI string

	dir      string
	ln       net.Listener
	upstream net.Conn

	wmu sync.Mutex // guards writes to upstream

	mu      sync.Mutex
	serial  uint32
	pending map[uint32]route
	clients map[net.Conn]*sync.Mutex
	wg      sync.WaitGroup
}

// route is where a reply goes back to.
type route struct {
	client net.Conn
	wmu    *sync.Mutex
	serial uint32
}

// Share opens uri on the daemon once and serves that connection on a new
// socket until Close.
func (d *Daemon) Share(uri string) (*Shared, error) {
	dir, err := os.MkdirTemp("", "lvs")
	if err != nil {
		return nil, err
	}
	s := &Shared{
		Socket:  filepath.Join(dir, "shared-sock"),
		URI:     uri,
		dir:     dir,
		pending: map[uint32]route{},
		clients: map[net.Conn]*sync.Mutex{},
	}
	if err := s.open(d.Socket); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.ln, err = net.Listen("unix", s.Socket); err != nil {
		s.upstream.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	s.wg.Add(2)
	go s.accept()
	go s.replies()
	return s, nil
}

// open dials the daemon and makes the one ConnectOpen call of the shared
// connection: remote_connect_open_args is an optional string (the URI)
// and flags.
func (s *Shared) open(sock string) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	var args []byte
	args = binary.BigEndian.AppendUint32(args, 1) // URI present
	args = appendString(args, s.URI)
	args = binary.BigEndian.AppendUint32(args, 0) // flags
	if _, err := c.Write(packet(pktHeader{remoteProgram, 1, procConnectOpen, typeCall, 0, statusOK}, args)); err != nil {
		c.Close()
		return err
	}
	rep, err := readPacket(c)
	if err != nil {
		c.Close()
		return fmt.Errorf("open %s: %w", s.URI, err)
	}
	if h := header(rep); h.status != statusOK {
		c.Close()
		return fmt.Errorf("open %s: daemon refused: %s", s.URI, errorMessage(rep[28:]))
	}
	s.upstream = c
	s.serial = 1
	return nil
}

// Close stops serving and closes the shared connection, which ends the
// fleet's state.
func (s *Shared) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.clients {
		c.Close()
	}
	s.mu.Unlock()
	s.upstream.Close()
	s.wg.Wait()
	os.RemoveAll(s.dir)
	return err
}

func (s *Shared) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		wmu := &sync.Mutex{}
		s.mu.Lock()
		s.clients[c] = wmu
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c, wmu)
			s.mu.Lock()
			delete(s.clients, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Shared) serve(c net.Conn, wmu *sync.Mutex) {
	for {
		pkt, err := readPacket(c)
		if err != nil {
			return
		}
		h := header(pkt)
		if h.program == remoteProgram && h.typ == typeCall && (h.proc == procConnectOpen || h.proc == procConnectClose) {
			wmu.Lock()
			_, err := c.Write(reply(h))
			wmu.Unlock()
			if err != nil {
				return
			}
			continue
		}
		s.mu.Lock()
		s.serial++
		up := s.serial
		s.pending[up] = route{client: c, wmu: wmu, serial: h.serial}
		s.mu.Unlock()
		binary.BigEndian.PutUint32(pkt[20:], up)
		s.wmu.Lock()
		_, err = s.upstream.Write(pkt)
		s.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// replies routes the daemon's replies back to the clients that asked.
func (s *Shared) replies() {
	defer s.wg.Done()
	for {
		pkt, err := readPacket(s.upstream)
		if err != nil {
			return
		}
		h := header(pkt)
		s.mu.Lock()
		r, ok := s.pending[h.serial]
		delete(s.pending, h.serial)
		s.mu.Unlock()
		if !ok {
			continue // an event or a reply for a client gone
		}
		binary.BigEndian.PutUint32(pkt[20:], r.serial)
		r.wmu.Lock()
		_, _ = r.client.Write(pkt)
		r.wmu.Unlock()
	}
}

func packet(h pktHeader, payload []byte) []byte {
	b := make([]byte, 28, 28+len(payload))
	for i, v := range []uint32{uint32(28 + len(payload)), h.program, h.version, h.proc, h.typ, h.serial, h.status} {
		binary.BigEndian.PutUint32(b[4*i:], v)
	}
	return append(b, payload...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	b = append(b, s...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// errorMessage reads the message of a remote_error: int code, int
// domain, then an optional string message.
func errorMessage(b []byte) string {
	d := xdr{b: b}
	d.u32()
	d.u32()
	if d.u32() == 0 {
		return "(no message)"
	}
	m := d.str()
	if d.err != nil {
		return "(unreadable error)"
	}
	return m
}
