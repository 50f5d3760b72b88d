package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/cmd/datanode/agent"
	"github.com/metasrv/metasrv/server"
	"github.com/metasrv/metasrv/server/wire"
)

// A datanode on a fleet token is asked for its incarnation by every new
// leader (GET /incarnation on its own routes) and keeps its lease and
// regions across leader changes.
func TestFleetDatanodeKeepsItsRegionsAcrossLeaderChanges(t *testing.T) {
	const fleet, admin = "fleet-secret-0123456789abcdef0123456789", "alice-secret-0123456789abcdef0123456789"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dnTokens, adminTokens, agentToken := write("datanodes", "fleet:"+fleet+"\n"), write("admins", "alice:"+admin+"\n"), write("token", fleet+"\n")
	var nodes []*server.Node
	var ids []string
	defer func() {
		for _, n := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			_ = n.Close(ctx)
			cancel()
		}
	}()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		cfg := server.Config{NodeID: id, RPCAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, id),
			HeartbeatInterval: 300 * time.Millisecond, RegionLease: 3 * time.Second, FailoverTick: 100 * time.Millisecond,
			DatanodeTokenFile: dnTokens, AdminTokenFile: adminTokens,
			Logger: hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: io.Discard})}
		if i > 1 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		n, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = n.Serve() }()
		nodes = append(nodes, n)
		ids = append(ids, id)
	}
	isLeader := func(n *server.Node) bool { return n.Raft().State() == raft.Leader }
	call := func(method, path, body string) (int, []byte) {
		for _, n := range nodes { // any member: writes are forwarded
			req, _ := http.NewRequest(method, "http://"+n.Addr()+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+admin)
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return resp.StatusCode, b
			}
		}
		return 0, nil
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	leader := func() int {
		for i, n := range nodes {
			if isLeader(n) {
				return i
			}
		}
		return -1
	}
	waitFor("a leader", func() bool { return leader() >= 0 })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	a, err := agent.New(agent.Config{ID: 1, Addr: ln.Addr().String(), Metasrv: addrs, TokenFile: agentToken, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: datanodeMux(a)}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor("datanode 1 registered", func() bool { return len(nodes[0].FSM().Datanodes()) == 1 })
	if st, b := call(http.MethodPost, "/admin/tables", `{"name":"t","regions":3}`); st != http.StatusCreated {
		t.Fatalf("create table: %d %s", st, b)
	}
	serves := func() bool { return len(a.Serving()) == 3 }
	waitFor("regions served", serves)

	// heardThisTerm: the leader's monitor took heartbeats from datanode 1
	// in its own term (its history starts with the term).
	heardThisTerm := func(l *server.Node, n int) bool {
		resp, err := http.Get("http://" + l.Addr() + "/admin/heartbeat?addr=" + ln.Addr().String())
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var stats [][]wire.HeartbeatStat
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&stats) == nil && len(stats) == 1 && len(stats[0]) >= n
	}
	for round := 1; round <= 2; round++ {
		next := (leader() + 1) % len(nodes)
		to := nodes[next]
		if st, b := call(http.MethodPost, "/admin/cluster/transfer-leadership?to="+ids[next], ""); st != http.StatusOK {
			t.Fatalf("transfer %d: %d %s", round, st, b)
		}
		waitFor(fmt.Sprintf("round %d: the new leader takes datanode 1's heartbeats", round), func() bool {
			return isLeader(to) && heardThisTerm(to, 3)
		})
		var owned []uint64
		for _, r := range to.FSM().RegionsOf(1) {
			owned = append(owned, r.ID)
		}
		slices.Sort(owned)
		if got := a.Serving(); !slices.Equal(got, owned) {
			t.Fatalf("round %d: serving %v", round, got)
		}
	}
}
