package raftnode

import (
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is raft's TCP stream layer that, unlike NewTCPTransport,
// accepts a host name as the advertised address and resolves peer names at
// each dial: containers and pods change IP addresses across restarts.
type streamLayer struct {
	net.Listener
	advertise advertisedAddr
}

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

func newStreamLayer(listen, advertise string) (*streamLayer, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	if anyPort(advertise) {
		advertise = ln.Addr().String() // port 0: the one the kernel chose
	}
	return &streamLayer{Listener: ln, advertise: advertisedAddr(advertise)}, nil
}

// anyPort reports whether addr asks for any free port (":0").
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// Dial resolves addr afresh on every call.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", string(addr))
}

// Addr is the advertised address; raft stores it as this node's address.
func (s *streamLayer) Addr() net.Addr { return s.advertise }
