package main

// End-to-end tests: real metasrv (and datanode) processes started through
// deploy/localcluster, driven by metactl (run in process, so its exit code
// and output are checked directly).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// The binaries under test, built once by TestMain: metasrv always (the
// short tests use it), the datanode agent only without -short.
var metasrvBin, datanodeBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		localcluster.RunTestsEvenShort(m, []string{"./cmd/metasrv"}, &metasrvBin)
	}
	localcluster.RunTestsEvenShort(m, []string{"./cmd/metasrv", "./cmd/datanode"}, &metasrvBin, &datanodeBin)
}

// Fast failover timings: a datanode looks failed about 2 s after its last
// heartbeat; its lease is 3 × 500 ms + 1 s.
var fastArgs = []string{
	"--heartbeat-interval", "500ms",
	"--acceptable-heartbeat-pause", "1s",
	"--first-heartbeat-estimate", "500ms",
	"--failover-tick", "200ms",
	"--balancer-interval", "0",
}

const waitLong = 30 * time.Second

type ecluster struct {
	*localcluster.TestCluster
	endpoints string
}

// startE2E starts metasrv nodes and datanodes and waits for a ready leader
// and every datanode alive.
func startE2E(t *testing.T, nodes, datanodes int) *ecluster {
	t.Helper()
	tc := localcluster.StartTest(t, localcluster.TestOptions{
		Options: localcluster.Options{Bin: metasrvBin, DatanodeBin: datanodeBin, Nodes: nodes,
			Args: fastArgs, Datanodes: datanodes},
		Wait: waitLong, Timeout: 10 * time.Second})
	c := &ecluster{TestCluster: tc}
	var eps []string
	for _, n := range tc.Nodes() {
		eps = append(eps, n.RPCAddr)
	}
	c.endpoints = strings.Join(eps, ",")
	c.Eventually("every node ready", func() error {
		for _, n := range tc.Nodes() {
			r, err := c.SendJSON(http.MethodGet, n.URL("/admin/ready"), "")
			if err != nil {
				return err
			}
			if r.Code != http.StatusOK {
				return fmt.Errorf("%s: %s", n.ID, r)
			}
		}
		return nil
	})
	c.Eventually("every member's address known on every node", func() error {
		for _, n := range tc.Nodes() {
			var cl wire.Cluster
			r, err := c.SendJSON(http.MethodGet, n.URL("/admin/cluster"), "")
			if err == nil {
				err = json.Unmarshal(r.Body, &cl)
			}
			if err != nil {
				return err
			}
			for _, m := range cl.Members {
				if m.RPCAddr == "" {
					return fmt.Errorf("%s does not know %s's address yet", n.ID, m.ID)
				}
			}
		}
		return nil
	})
	for _, d := range tc.Datanodes() {
		c.waitDatanode(d.ID, func(d wire.Datanode) bool { return d.Status == "alive" })
	}
	return c
}

func (c *ecluster) metactl(args ...string) (int, string, string) {
	c.T.Helper()
	return runCLI(c.T.(*testing.T), append([]string{"--endpoints", c.endpoints}, args...)...)
}

func (c *ecluster) mustMetactl(args ...string) string {
	c.T.Helper()
	code, out, errOut := c.metactl(args...)
	if code != exitOK {
		c.T.Fatalf("metactl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (c *ecluster) maintenance() wire.Maintenance {
	c.T.Helper()
	var m wire.Maintenance
	if err := c.GetJSON("/admin/maintenance/status?verbose=true", &m); err != nil {
		c.T.Fatal(err)
	}
	return m
}

func (c *ecluster) datanode(id uint64) (wire.Datanode, error) {
	var dns []wire.Datanode
	if err := c.GetJSON("/admin/datanodes", &dns); err != nil {
		return wire.Datanode{}, err
	}
	for _, d := range dns {
		if d.ID == id {
			return d, nil
		}
	}
	return wire.Datanode{}, fmt.Errorf("datanode %d not registered", id)
}

func (c *ecluster) waitDatanode(id uint64, ok func(wire.Datanode) bool) {
	c.T.Helper()
	c.Eventually(fmt.Sprintf("datanode %d", id), func() error {
		d, err := c.datanode(id)
		if err == nil && !ok(d) {
			err = fmt.Errorf("%+v", d)
		}
		return err
	})
}

func (c *ecluster) regionsOn(id uint64) []wire.Route {
	c.T.Helper()
	var rs []wire.Route
	if err := c.GetJSON(fmt.Sprintf("/admin/regions?datanode=%d", id), &rs); err != nil {
		c.T.Fatal(err)
	}
	return rs
}

func (c *ecluster) waitPreflight(ready bool) {
	c.T.Helper()
	c.Eventually(fmt.Sprintf("preflight ready=%t", ready), func() error {
		var p wire.Preflight
		if err := c.GetJSON("/admin/maintenance/preflight", &p); err != nil {
			return err
		}
		if p.Ready != ready {
			return fmt.Errorf("%+v", p)
		}
		return nil
	})
}

func TestE2EStatusAndMaintenance(t *testing.T) {
	c := startE2E(t, 3, 0)
	out := c.mustMetactl("status")
	for _, want := range []string{"MEMBER", "leader", "follower", "maintenance: off", "regions: none"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	for _, n := range c.Nodes() {
		if !strings.Contains(out, n.ID+" ") || !strings.Contains(out, n.RPCAddr) {
			t.Fatalf("status lacks member %s at %s:\n%s", n.ID, n.RPCAddr, out)
		}
	}

	out = c.mustMetactl("maintenance", "enable", "--reason", "kernel upgrade", "--by", "alice", "--ttl", "1h")
	if !strings.Contains(out, `maintenance: on, by alice, reason "kernel upgrade"`) {
		t.Fatalf("enable: %s", out)
	}
	var m wire.Maintenance
	if err := json.Unmarshal([]byte(c.mustMetactl("-o", "json", "maintenance", "status")), &m); err != nil {
		t.Fatal(err)
	}
	if !m.Enabled || m.By != "alice" || m.ExpiresAt == nil {
		t.Fatalf("maintenance status -o json: %+v", m)
	}
	if out := c.mustMetactl("status"); !strings.Contains(out, "maintenance: on, by alice") {
		t.Fatalf("status after enable:\n%s", out)
	}
	// The health report, through any member: maintenance on with a TTL is
	// not a fault, and every indicator is there.
	out = c.mustMetactl("health")
	for _, want := range []string{"health: green", "quorum", "leader_stability", "raft_storage", "maintenance is on (by \"alice\"", "certificates"} {
		if !strings.Contains(out, want) {
			t.Fatalf("health lacks %q:\n%s", want, out)
		}
	}

	// The first endpoint is down: the next one answers.
	code, out, errOut := runCLI(t, "--endpoints", "127.0.0.1:1,"+c.endpoints, "maintenance", "disable")
	if code != exitOK || !strings.Contains(out, "voters_caught_up") || !strings.Contains(out, "maintenance: off (preflight passed)") {
		t.Fatalf("disable: exit %d\n%s%s", code, out, errOut)
	}
	if c.maintenance().Enabled {
		t.Fatal("maintenance still on after disable")
	}
}

func TestE2EDisableRefusedWhileDatanodeDown(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startE2E(t, 3, 2)
	if r := c.PostJSON("/admin/tables", `{"name":"t","regions":4}`); r.Code != http.StatusCreated {
		t.Fatalf("create table: %s", r)
	}
	c.waitPreflight(true)
	dn1 := c.Datanode(1)

	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		after bool // maintenance on afterwards
	}{
		{"refused while datanode 1 is down", nil, exitNotReady, true},
		{"forced while datanode 1 is down", []string{"--force"}, exitOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.mustMetactl("maintenance", "enable", "--reason", "test")
			dn1.Kill()
			c.waitDatanode(1, func(d wire.Datanode) bool { return d.Status == "failed" })
			code, out, errOut := c.metactl(append([]string{"maintenance", "disable"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("disable %v: exit %d, want %d\n%s%s", tc.args, code, tc.code, out, errOut)
			}
			if !strings.Contains(out, "datanodes_alive") || !strings.Contains(out, "would fail over 2 regions at once, from datanode 1") {
				t.Fatalf("disable output does not show the preflight:\n%s", out)
			}
			if tc.code == exitNotReady && !strings.Contains(errOut, "409 preflight_failed") {
				t.Fatalf("refusal: %q", errOut)
			}
			if got := c.maintenance().Enabled; got != tc.after {
				t.Fatalf("maintenance enabled=%t after disable, want %t", got, tc.after)
			}
			if tc.code == exitNotReady {
				// The datanode returns: the same command is accepted.
				if err := dn1.Start(); err != nil {
					t.Fatal(err)
				}
				c.waitDatanode(1, func(d wire.Datanode) bool { return d.Status == "alive" })
				c.waitPreflight(true)
				if out := c.mustMetactl("maintenance", "disable"); !strings.Contains(out, "maintenance: off (preflight passed)") {
					t.Fatalf("disable after the datanode returned:\n%s", out)
				}
			}
		})
	}
}

func TestE2EDrainWait(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startE2E(t, 1, 2)
	if r := c.PostJSON("/admin/tables", `{"name":"t","regions":4}`); r.Code != http.StatusCreated {
		t.Fatalf("create table: %s", r)
	}
	c.waitPreflight(true)
	if n := len(c.regionsOn(1)); n == 0 {
		t.Fatal("datanode 1 owns no region to drain")
	}

	// The wait ends once datanode 1 owns nothing and serves nothing,
	// while it keeps running.
	code, out, errOut := c.metactl("datanode", "drain", "1", "--wait", "--timeout", "60s")
	if code != exitOK || !strings.Contains(out, "datanode 1 drained") {
		t.Fatalf("drain --wait: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(c.regionsOn(1)); n != 0 {
		t.Fatalf("datanode 1 still owns %d regions after the drain", n)
	}
	d, err := c.datanode(1)
	if err != nil || d.StillServing {
		t.Fatalf("after drain --wait: %+v %v", d, err)
	}
	if !c.Datanode(1).Running() {
		t.Fatal("datanode 1 stopped")
	}
	// And it serves nothing: its own /regions is empty.
	r, err := c.Request(5*time.Second, http.MethodGet, c.Datanode(1).URL("/regions"), nil)
	if err != nil || strings.TrimSpace(string(r.Body)) != "[]" {
		t.Fatalf("datanode 1 /regions after the drain: %s %v", r, err)
	}
}

// events --follow long-polls the leader and prints a new event within a
// second of its write; --latest shows the newest ones.
func TestE2EEventsFollowAndLatest(t *testing.T) {
	c := startE2E(t, 3, 0)
	// The leader records its election once every member's level is known:
	// let it land first, so the newest event below is the write's.
	c.Eventually("the election recorded", func() error {
		if out := c.mustMetactl("events", "--latest", "5"); !strings.Contains(out, "leader_elected") {
			return fmt.Errorf("%s", out)
		}
		return nil
	})
	c.mustMetactl("maintenance", "enable", "--reason", "first")
	if out := c.mustMetactl("events", "--latest", "1"); !strings.Contains(out, "maintenance_enabled") || strings.Count(out, "\n") != 2 {
		t.Fatalf("events --latest 1:\n%s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb localcluster.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--endpoints", c.endpoints, "events", "--latest", "1", "--follow"}, &out, &errb, false)
	}()
	c.Eventually("the first page printed", func() error {
		if !strings.Contains(out.String(), "first") {
			return fmt.Errorf("%q", out.String())
		}
		return nil
	})
	written := time.Now()
	c.mustMetactl("maintenance", "disable", "--force")
	c.Eventually("the disable printed", func() error {
		if !strings.Contains(out.String(), "maintenance_disabled") {
			return fmt.Errorf("%q", out.String())
		}
		return nil
	})
	took := time.Since(written)
	t.Logf("events --follow printed the write %s after it", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("printed %s after the write, want within about a second", took)
	}
	// A leader change is an event too.
	moved := time.Now()
	c.mustMetactl("member", "transfer-leader")
	c.Eventually("the leader change printed", func() error {
		if !strings.Contains(out.String(), "leader_elected") {
			return fmt.Errorf("%q", out.String())
		}
		return nil
	})
	took = time.Since(moved)
	t.Logf("events --follow printed the leader change %s after the transfer was asked", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("printed the leader change %s after it, want within about a second", took)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("events --follow exit %d after Ctrl-C: %s", code, errb.String())
		}
	case <-time.After(waitLong):
		t.Fatal("events --follow did not stop")
	}
}

// member add refuses a node that does not answer on its raft address
// (join_unreachable, nothing changed); bad addresses are usage errors.
func TestE2EMemberAddRefusesAGhost(t *testing.T) {
	c := startE2E(t, 3, 0)
	code, _, errOut := c.metactl("member", "add", "n9", "--raft-addr", "127.0.0.1:1", "--rpc-addr", "127.0.0.1:2")
	if code != exitError || !strings.Contains(errOut, "join_unreachable") {
		t.Fatalf("member add of a ghost: exit %d: %s", code, errOut)
	}
	if out := c.mustMetactl("member", "list"); strings.Contains(out, "n9") {
		t.Fatalf("the ghost was added:\n%s", out)
	}
	for _, args := range [][]string{
		{"member", "add", "n9", "--raft-addr", "nohost", "--rpc-addr", "127.0.0.1:2"},
		{"member", "add", "n9", "--rpc-addr", "127.0.0.1:2"},
		{"member", "add", "--raft-addr", "127.0.0.1:1", "--rpc-addr", "127.0.0.1:2"},
	} {
		if code, _, errOut := c.metactl(args...); code != exitUsage {
			t.Errorf("metactl %v: exit %d, want %d: %s", args, code, exitUsage, errOut)
		}
	}
}
