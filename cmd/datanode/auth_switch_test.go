package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/cmd/datanode/agent"
	"github.com/metasrv/metasrv/server"
)

// Turning datanode authentication on in a running cluster, as the README's
// runbook says: agents first (they send their token even when metasrv does
// not ask for one), then each metasrv node restarted with
// --datanode-token-file, one at a time. No region goes unserved on the
// way, and at the end a heartbeat without a credential is refused.
func TestSwitchingDatanodeAuthOnLeavesNoRegionUnserved(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "datanode-tokens")
	secrets := map[uint64]string{1: "datanode-1-secret-0123456789abcdef0123", 2: "datanode-2-secret-0123456789abcdef0123"}
	var lines []string
	for id, s := range secrets {
		lines = append(lines, fmt.Sprintf("datanode-%d:%s", id, s))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("dn%d.token", id)), []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(tokens, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	type member struct {
		cfg  server.Config
		node *server.Node
	}
	start := func(cfg server.Config) *member {
		t.Helper()
		n, err := server.New(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", cfg.NodeID, err)
		}
		go func() { _ = n.Serve() }()
		return &member{cfg: cfg, node: n}
	}
	stop := func(m *member) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = m.node.Close(ctx)
	}
	cfgFor := func(id string) server.Config {
		return server.Config{NodeID: id, RPCAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, id),
			HeartbeatInterval: 500 * time.Millisecond, RegionLease: 3 * time.Second, FailoverTick: 100 * time.Millisecond,
			Logger: hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: io.Discard})}
	}
	ready := func(m *member) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + m.node.Addr() + "/admin/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready within 30s", m.cfg.NodeID)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var members []*member
	defer func() {
		for _, m := range members {
			stop(m)
		}
	}()
	first := start(cfgFor("n1"))
	members = append(members, first)
	ready(first)
	for _, id := range []string{"n2", "n3"} {
		cfg := cfgFor(id)
		cfg.Join = []string{first.node.Addr()}
		m := start(cfg)
		members = append(members, m)
		ready(m)
	}
	var addrs []string
	for _, m := range members {
		addrs = append(addrs, m.node.Addr())
	}

	// Agents first: they send their tokens, which metasrv does not check yet.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	agents := map[uint64]*agent.Agent{}
	for id := range secrets {
		a, err := agent.New(agent.Config{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 4200+id), Metasrv: addrs,
			TokenFile: filepath.Join(dir, fmt.Sprintf("dn%d.token", id)), Logger: hclog.NewNullLogger()})
		if err != nil {
			t.Fatal(err)
		}
		agents[id] = a
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	leaderAddr := func() string {
		for _, m := range members {
			resp, err := http.Get("http://" + m.node.Addr() + "/admin/leader")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return string(b)
				}
			}
		}
		return ""
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(members[0].node.FSM().Datanodes()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Post("http://"+leaderAddr()+"/admin/tables", "application/json", strings.NewReader(`{"name":"t","regions":4}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create table: %v %v", resp, err)
	}
	resp.Body.Close()
	// The sampler reads a running member's state; the restart loop points
	// it at one that is not being restarted.
	var view atomic.Pointer[server.Node]
	view.Store(members[0].node)
	unservedNow := func() []uint64 {
		var out []uint64
		for _, r := range view.Load().FSM().Regions() {
			if a := agents[r.Datanode]; a == nil || !slices.Contains(a.Serving(), r.ID) {
				out = append(out, r.ID)
			}
		}
		return out
	}
	for len(unservedNow()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if u := unservedNow(); len(u) > 0 {
		t.Fatalf("regions %v not served before the switch", u)
	}

	// Sample every 50 ms while each node restarts with the token file.
	var samples, unserved atomic.Int64
	var firstMiss atomic.Value
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			samples.Add(1)
			if u := unservedNow(); len(u) > 0 {
				unserved.Add(1)
				firstMiss.CompareAndSwap(nil, fmt.Sprint(u))
			}
		}
	}()
	for i, m := range members {
		view.Store(members[(i+1)%len(members)].node)
		stop(m)
		cfg := m.cfg
		cfg.RPCAddr, cfg.RaftAddr = m.node.Addr(), m.node.RaftAddr()
		cfg.Join = nil
		cfg.DatanodeTokenFile = tokens
		members[i] = start(cfg)
		ready(members[i])
	}
	// Keep sampling past a whole lease: a datanode whose heartbeats were
	// refused after the switch would stop serving within it.
	time.Sleep(members[0].cfg.RegionLease + time.Second)
	close(stopSampling)
	<-sampled
	t.Logf("%d samples during the rolling switch, %d with a region unserved", samples.Load(), unserved.Load())
	if unserved.Load() != 0 {
		t.Fatalf("%d of %d samples found a region unserved (first: %v)", unserved.Load(), samples.Load(), firstMiss.Load())
	}
	// Authentication is on now: a heartbeat without a credential is refused.
	resp, err = http.Post("http://"+leaderAddr()+"/v1/heartbeat", "application/json",
		strings.NewReader(`{"id":9,"addr":"127.0.0.1:4999","start_time_ms":1,"seq":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unauthenticated heartbeat after the switch: %s", resp.Status)
	}
}
