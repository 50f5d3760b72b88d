package raftnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sync"

	"github.com/metasrv/metasrv/fsm"
)

// directory is a small file in the data dir holding the cluster ID and the
// members' addresses. It is a second source for the leader's RPC address
// that does not wait on the raft log: a restarted node's FSM can lag for
// seconds (raft backs off replication to a peer that kept failing), yet
// with this file it forwards to the leader at once.
type directory struct {
	path string

	mu      sync.Mutex
	data    directoryData
	corrupt error // set when the file could not be parsed at start
}

type directoryData struct {
	ClusterID string                    `json:"cluster_id"`
	Members   map[string]directoryEntry `json:"members"`
}

type directoryEntry struct {
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
}

const directoryFile = "metasrv-directory.json"

func openDirectory(dataDir string) (*directory, error) {
	d := &directory{path: filepath.Join(dataDir, directoryFile)}
	b, err := os.ReadFile(d.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", d.path, err)
	default:
		if err := json.Unmarshal(b, &d.data); err != nil {
			// Only a cache of the replicated member table: start without it.
			d.data = directoryData{}
			d.corrupt = err
		}
	}
	if d.data.Members == nil {
		d.data.Members = map[string]directoryEntry{}
	}
	return d, nil
}

func (d *directory) clusterID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.data.ClusterID
}

func (d *directory) rpcAddr(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.data.Members[id].RPCAddr
}

// update merges what the caller knows and rewrites the file if anything
// changed. members replaces the member list when non-nil.
func (d *directory) update(clusterID string, members []fsm.Member) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := directoryData{ClusterID: d.data.ClusterID, Members: map[string]directoryEntry{}}
	if clusterID != "" {
		next.ClusterID = clusterID
	}
	if members == nil {
		next.Members = d.data.Members
	}
	for _, m := range members {
		next.Members[m.ID] = directoryEntry{RaftAddr: m.RaftAddr, RPCAddr: m.RPCAddr}
	}
	if reflect.DeepEqual(next, d.data) {
		return nil
	}
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return err
	}
	tmp := d.path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, d.path); err != nil {
		return fmt.Errorf("replace %s: %w", d.path, err)
	}
	d.data = next
	return nil
}

// directoryLoop keeps the file in step with the replicated member table.
func (n *Node) directoryLoop() {
	for {
		ch := n.fsm.Changed()
		cid := n.fsm.ClusterID()
		if stored := n.dir.clusterID(); cid != "" && stored != "" && stored != cid {
			n.fatal(fmt.Errorf("data dir belongs to cluster %s but the raft log says %s", stored, cid))
		}
		members := n.fsm.Members()
		if len(members) == 0 {
			members = nil // not learnt yet: keep what the file says
		}
		if err := n.dir.update(cid, members); err != nil {
			n.log.Warn("cannot persist member directory", "error", err)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-ch:
		}
	}
}

// writeFileSync writes and fsyncs a file, so a rename after it never
// exposes an empty file after a crash.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
