package raftnode

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestStreamLayerPortZeroAdvertisesChosenPort(t *testing.T) {
	sl, err := newStreamLayer("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	bound := sl.Listener.Addr().String()
	if strings.HasSuffix(bound, ":0") {
		t.Fatalf("bound %s", bound)
	}
	if got := sl.Addr().String(); got != bound {
		t.Fatalf("advertised %s, bound %s", got, bound)
	}
	if sl.Addr().Network() != "tcp" {
		t.Fatalf("network %s", sl.Addr().Network())
	}

	// Dial reaches the listener; Accept sees it.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := sl.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := sl.Dial(raft.ServerAddress(sl.Addr().String()), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc, ok := <-accepted:
		if !ok {
			t.Fatal("accept failed")
		}
		sc.Close()
	case <-time.After(waitTest):
		t.Fatal("no connection accepted")
	}
}

const waitTest = 10 * time.Second

func TestStreamLayerKeepsNamedAdvertiseAddr(t *testing.T) {
	sl, err := newStreamLayer("127.0.0.1:0", "metasrv-0.metasrv:3003")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if got := sl.Addr().String(); got != "metasrv-0.metasrv:3003" {
		t.Fatalf("advertised %s", got)
	}
}

func TestStreamLayerListenErrorAndDialError(t *testing.T) {
	if _, err := newStreamLayer("256.0.0.1:1", "x:1"); err == nil {
		t.Fatal("listening on an invalid address: no error")
	}
	sl, err := newStreamLayer("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := sl.Addr().String()
	sl.Close()
	if c, err := sl.Dial(raft.ServerAddress(addr), time.Second); err == nil {
		c.Close()
		t.Fatal("dialing a closed listener: no error")
	}
}

func TestAnyPort(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:0": true, ":0": true, "[::1]:0": true, "host:0": true,
		"127.0.0.1:3003": false, "127.0.0.1:00": false, "127.0.0.1": false, "": false,
	} {
		if got := anyPort(addr); got != want {
			t.Errorf("anyPort(%q) = %t, want %t", addr, got, want)
		}
	}
}
