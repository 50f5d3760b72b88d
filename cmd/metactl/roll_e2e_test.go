package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// roll datanodes against real processes: the command runs for each
// datanode in id order while maintenance is on (it asks the API itself)
// and has the datanode killed and restarted; the roll waits each one out,
// nothing moves, and it ends with maintenance off and every region served. A
// command that fails on the second datanode leaves maintenance on with the
// abort reason and its TTL; a roll while someone else's window is open is
// refused and changes nothing.
func TestE2ERollDatanodes(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startE2E(t, 3, 3)
	if r := c.PostJSON("/admin/tables", `{"name":"t","regions":6}`); r.Code != 201 {
		t.Fatalf("create table: %s", r)
	}
	c.waitPreflight(true)
	var before []wire.Route
	if err := c.GetJSON("/admin/regions", &before); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "rolled")
	ep := strings.Split(c.endpoints, ",")[1] // a follower or the leader: any member answers
	// The command records that maintenance is on, asks the test to kill -9
	// and restart the datanode (req-N), and returns once it has (done-N):
	// a real restart, which the roll must wait out.
	exec := "echo rolled {id} {addr} $(curl -s http://" + ep + "/admin/maintenance) >> " + log +
		" && touch " + dir + "/req-{id} && i=0 && while [ ! -e " + dir + "/done-{id} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
	restarted := make(chan int, 1)
	go func() {
		n := 0
		deadline := time.Now().Add(2 * time.Minute)
		for id := uint64(1); id <= 3 && time.Now().Before(deadline); {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("req-%d", id))); err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			d := c.Datanode(id)
			d.Kill()
			if err := d.Start(); err == nil {
				n++
			}
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("done-%d", id)), nil, 0o600)
			id++
		}
		restarted <- n
	}()
	out := c.mustMetactl("roll", "datanodes", "--exec", exec, "--ttl", "5m", "--timeout", "1m")
	if !strings.Contains(out, "rolled 3 datanodes; maintenance: off") {
		t.Fatalf("roll:\n%s", out)
	}
	t.Logf("roll output:\n%s", out)
	if n := <-restarted; n != 3 {
		t.Fatalf("%d of 3 datanodes restarted", n)
	}
	// Nothing moved: every region is still on its owner.
	var after []wire.Route
	if err := c.GetJSON("/admin/regions", &after); err != nil {
		t.Fatal(err)
	}
	owner := map[uint64]uint64{}
	for _, r := range before {
		owner[r.ID] = r.Datanode
	}
	for _, r := range after {
		if owner[r.ID] != r.Datanode {
			t.Fatalf("region %d moved from %d to %d during the roll", r.ID, owner[r.ID], r.Datanode)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("the command ran %d times:\n%s", len(lines), b)
	}
	for i, l := range lines {
		id := string(rune('1' + i))
		if !strings.HasPrefix(l, "rolled "+id+" ") || !strings.HasSuffix(l, `{"enabled":true}`) {
			t.Fatalf("run %d: %q, want datanode %s with maintenance on", i+1, l, id)
		}
	}
	if c.maintenance().Enabled {
		t.Fatal("maintenance on after the roll")
	}
	c.waitPreflight(true)

	// The command fails on datanode 2: maintenance stays on, saying so.
	code, _, errOut := c.metactl("roll", "datanodes", "--exec", "test {id} != 2", "--ttl", "5m", "--timeout", "1m")
	if code != exitError || !strings.Contains(errOut, "roll aborted at datanode 2") || !strings.Contains(errOut, "--ids 2,3") {
		t.Fatalf("a failing roll: exit %d\n%s", code, errOut)
	}
	m := c.maintenance()
	if !m.Enabled || !strings.HasPrefix(m.Reason, "roll aborted at datanode 2: ") || m.ExpiresAt == nil {
		t.Fatalf("maintenance after the abort: %+v", m)
	}

	// Someone else's window (this one, now) is not shared.
	code, _, errOut = c.metactl("roll", "datanodes", "--exec", "true")
	if code != exitError || !strings.Contains(errOut, "already on") {
		t.Fatalf("a roll during another window: exit %d\n%s", code, errOut)
	}
	if after := c.maintenance(); after.Epoch != m.Epoch || after.Reason != m.Reason {
		t.Fatalf("the refused roll changed maintenance: %+v", after)
	}
}
