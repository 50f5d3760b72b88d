package server

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDataDirIsMadePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	startCluster(t, 1, func(c *Config) { c.DataDir = dir })
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %s, want 0700", st.Mode().Perm())
	}
}

func TestMaxConnectionsAndHeaderLimit(t *testing.T) {
	c := startCluster(t, 1, func(c *Config) { c.MaxConnections = 4 })
	n := c.nodes[0]
	// The harness's client holds at most one idle connection; fill the
	// rest of the cap with silent ones.
	var held []net.Conn
	for i := 0; i < 4; i++ {
		conn, err := net.Dial("tcp", n.node.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	http.DefaultClient.CloseIdleConnections()
	short := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{}}
	if resp, err := short.Get(n.url + "/admin/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("a fifth connection was served: %s", resp.Status)
	}
	for _, conn := range held {
		conn.Close()
	}
	eventually(t, "served again once connections close", func() error {
		resp, err := short.Get(n.url + "/admin/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		short.CloseIdleConnections()
		return nil
	})
	req, _ := http.NewRequest(http.MethodGet, n.url+"/admin/health", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 100<<10))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 100 KiB header: %s, want 431", resp.Status)
	}
}
