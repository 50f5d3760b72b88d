package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// roll datanodes against real processes: the command runs for each
// datanode in id order while maintenance is on (it asks the API itself),
// and the roll ends with maintenance off and every region served. A
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
	log := filepath.Join(t.TempDir(), "rolled")
	ep := strings.Split(c.endpoints, ",")[1] // a follower or the leader: any member answers
	exec := "echo rolled {id} {addr} $(curl -s http://" + ep + "/admin/maintenance) >> " + log
	out := c.mustMetactl("roll", "datanodes", "--exec", exec, "--ttl", "5m", "--timeout", "1m")
	if !strings.Contains(out, "rolled 3 datanodes; maintenance: off") {
		t.Fatalf("roll:\n%s", out)
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
