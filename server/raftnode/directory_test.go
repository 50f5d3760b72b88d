package raftnode

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/metasrv/metasrv/fsm"
)

func readDirectoryFile(t *testing.T, dir string) directoryData {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, directoryFile))
	if err != nil {
		t.Fatal(err)
	}
	var d directoryData
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("directory file is not JSON: %v\n%s", err, b)
	}
	return d
}

func TestDirectoryUpdatePersistsAndReopens(t *testing.T) {
	dataDir := t.TempDir()
	d, err := openDirectory(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if d.corrupt != nil || d.clusterID() != "" || d.rpcAddr("n1") != "" {
		t.Fatalf("fresh directory: corrupt=%v cluster=%q n1=%q", d.corrupt, d.clusterID(), d.rpcAddr("n1"))
	}
	if _, err := os.Stat(filepath.Join(dataDir, directoryFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("opening created the file: %v", err)
	}

	members := []fsm.Member{
		{ID: "n1", RaftAddr: "10.0.0.1:3003", RPCAddr: "10.0.0.1:3002"},
		{ID: "n2", RaftAddr: "10.0.0.2:3003", RPCAddr: "10.0.0.2:3002"},
	}
	if err := d.update("cid-1", members); err != nil {
		t.Fatal(err)
	}
	if d.clusterID() != "cid-1" || d.rpcAddr("n2") != "10.0.0.2:3002" || d.rpcAddr("n9") != "" {
		t.Fatalf("after update: cluster=%q n2=%q n9=%q", d.clusterID(), d.rpcAddr("n2"), d.rpcAddr("n9"))
	}
	onDisk := readDirectoryFile(t, dataDir)
	if onDisk.ClusterID != "cid-1" || len(onDisk.Members) != 2 || onDisk.Members["n1"].RaftAddr != "10.0.0.1:3003" {
		t.Fatalf("file: %+v", onDisk)
	}
	if _, err := os.Stat(filepath.Join(dataDir, directoryFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}

	// An empty cluster id keeps the stored one; nil members keep the list.
	if err := d.update("", nil); err != nil {
		t.Fatal(err)
	}
	if d.clusterID() != "cid-1" || d.rpcAddr("n1") != "10.0.0.1:3002" {
		t.Fatalf("update(\"\", nil) lost data: cluster=%q n1=%q", d.clusterID(), d.rpcAddr("n1"))
	}

	// An unchanged update does not rewrite the file.
	if err := os.Remove(filepath.Join(dataDir, directoryFile)); err != nil {
		t.Fatal(err)
	}
	if err := d.update("cid-1", members); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, directoryFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an unchanged update rewrote the file: %v", err)
	}

	// A non-nil member list replaces the old one.
	if err := d.update("", []fsm.Member{{ID: "n3", RaftAddr: "10.0.0.3:3003", RPCAddr: "10.0.0.3:3002"}}); err != nil {
		t.Fatal(err)
	}
	if d.rpcAddr("n1") != "" || d.rpcAddr("n3") != "10.0.0.3:3002" || d.clusterID() != "cid-1" {
		t.Fatalf("replace: n1=%q n3=%q cluster=%q", d.rpcAddr("n1"), d.rpcAddr("n3"), d.clusterID())
	}

	// Reopening reads what was written.
	d2, err := openDirectory(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if d2.corrupt != nil || d2.clusterID() != "cid-1" || d2.rpcAddr("n3") != "10.0.0.3:3002" || d2.rpcAddr("n1") != "" {
		t.Fatalf("reopened: corrupt=%v cluster=%q n3=%q n1=%q", d2.corrupt, d2.clusterID(), d2.rpcAddr("n3"), d2.rpcAddr("n1"))
	}
}

func TestDirectoryCorruptFileIgnored(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":    "{not json",
		"truncated":  `{"cluster_id":"c","members":{"n1":{"raft_addr":`,
		"wrong type": `{"cluster_id":7}`,
	} {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dataDir, directoryFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := openDirectory(dataDir)
			if err != nil {
				t.Fatalf("a corrupt file must not stop the node: %v", err)
			}
			if d.corrupt == nil {
				t.Fatal("corrupt file not reported")
			}
			if d.clusterID() != "" || d.rpcAddr("n1") != "" || d.data.Members == nil {
				t.Fatalf("corrupt file content used: %+v", d.data)
			}
			// It is rebuilt on the next update.
			if err := d.update("c2", []fsm.Member{{ID: "n1", RPCAddr: "h:1"}}); err != nil {
				t.Fatal(err)
			}
			if got := readDirectoryFile(t, dataDir); got.ClusterID != "c2" || got.Members["n1"].RPCAddr != "h:1" {
				t.Fatalf("rebuilt file: %+v", got)
			}
		})
	}
}

func TestDirectoryErrors(t *testing.T) {
	// A directory where the file should be cannot be read.
	dataDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dataDir, directoryFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := openDirectory(dataDir); err == nil {
		t.Fatal("openDirectory on an unreadable path: no error")
	}

	// A data dir that vanished cannot be written.
	gone := filepath.Join(t.TempDir(), "gone")
	d, err := openDirectory(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.update("c", []fsm.Member{{ID: "n1"}}); err == nil {
		t.Fatal("update into a missing dir: no error")
	}
	if d.clusterID() != "" {
		t.Fatalf("a failed update changed the in-memory state: %q", d.clusterID())
	}
}
