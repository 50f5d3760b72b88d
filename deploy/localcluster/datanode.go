package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// Datanode is one datanode process (running or not) of a cluster, on its
// own loopback host, with its own --data-dir so a restart remembers its
// regions.
type Datanode struct {
	ID      uint64
	Host    string
	Addr    string // HTTP address, also what it reports to metasrv
	DataDir string
	LogPath string
	Args    []string // full argument list used by Start

	proc   *Node  // the process machinery shared with metasrv nodes
	scheme string // of URL; "" is http://
}

func (c *Cluster) datanodeHost(i int) string {
	return fmt.Sprintf("%d.%d.%d.%d", c.prefix[0], c.prefix[1], c.prefix[2], 100+i)
}

// AddDatanode prepares (but does not start) one more datanode, with the
// next id, that heartbeats to every metasrv node known now.
func (c *Cluster) AddDatanode() *Datanode {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.dns) + 1
	host := c.datanodeHost(i)
	d := &Datanode{ID: uint64(i), Host: host, Addr: fmt.Sprintf("%s:%d", host, DatanodePort)}
	name := fmt.Sprintf("dn%d", i)
	d.DataDir = filepath.Join(c.opts.Dir, name)
	d.LogPath = filepath.Join(c.opts.Dir, name+".log")
	var metas []string
	for _, n := range c.nodes {
		metas = append(metas, n.RPCAddr)
	}
	d.Args = []string{"--id", fmt.Sprint(d.ID), "--addr", d.Addr, "--metasrv", strings.Join(metas, ","),
		"--data-dir", d.DataDir, "--log-level", "debug"}
	if c.PKI != nil {
		args, err := c.datanodeTLSArgs(d)
		if err != nil {
			panic(err) // only the test's temporary directory can fail here
		}
		d.Args = append(d.Args, args...)
		d.scheme = "https://"
	}
	d.Args = append(d.Args, c.opts.DatanodeArgs...)
	d.proc = &Node{ID: name, Host: host, DataDir: d.DataDir, LogPath: d.LogPath, env: c.opts.Env, bin: c.opts.DatanodeBin}
	c.dns = append(c.dns, d)
	return d
}

// Datanodes returns every datanode, running or not, by id.
func (c *Cluster) Datanodes() []*Datanode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Datanode(nil), c.dns...)
}

// Datanode returns the datanode with the given id, or nil.
func (c *Cluster) Datanode(id uint64) *Datanode {
	for _, d := range c.Datanodes() {
		if d.ID == id {
			return d
		}
	}
	return nil
}

// Start launches the datanode with its Args; its log is appended to LogPath.
func (d *Datanode) Start() error {
	if d.proc.bin == "" {
		return fmt.Errorf("%s: Options.DatanodeBin is not set", d.proc.ID)
	}
	d.proc.mu.Lock()
	d.proc.Args = d.Args
	d.proc.mu.Unlock()
	return d.proc.Start()
}

// Running reports whether the process is alive (paused included).
func (d *Datanode) Running() bool { return d.proc.Running() }

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (d *Datanode) Kill() { d.proc.Kill() }

// Stop sends SIGTERM and waits up to timeout for a clean exit.
func (d *Datanode) Stop(timeout time.Duration) error { return d.proc.Stop(timeout) }

// Pause freezes the process (SIGSTOP); Resume thaws it (SIGCONT).
func (d *Datanode) Pause() error  { return d.proc.Pause() }
func (d *Datanode) Resume() error { return d.proc.Resume() }

// URL returns the datanode's base URL plus path.
func (d *Datanode) URL(path string) string {
	if d.scheme == "" {
		return "http://" + d.Addr + path
	}
	return d.scheme + d.Addr + path
}

// Regions asks the datanode which regions it serves now (GET /regions).
func (c *Cluster) Regions(d *Datanode) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	code, body, err := c.Do(ctx, http.MethodGet, d.URL("/regions"), nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("dn%d /regions: status %d: %s", d.ID, code, body)
	}
	var ids []uint64
	if err := json.Unmarshal(body, &ids); err != nil {
		return nil, fmt.Errorf("dn%d /regions: %q: %v", d.ID, body, err)
	}
	return ids, nil
}
