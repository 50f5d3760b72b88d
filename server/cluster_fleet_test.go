package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// fakeDatanode answers GET /incarnation on a loopback port as a datanode
// process would; restart switches it to a new incarnation.
type fakeDatanode struct {
	addr string
	inc  atomic.Pointer[wire.Incarnation]
	key  atomic.Pointer[string]
}

func newFakeDatanode(t *testing.T, id uint64, start int64, key string) *fakeDatanode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDatanode{addr: ln.Addr().String()}
	f.restart(id, start, key)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/incarnation" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(f.inc.Load())
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *fakeDatanode) restart(id uint64, start int64, key string) {
	f.inc.Store(&wire.Incarnation{ID: id, StartTimeMs: start, KeySHA256: wire.IncarnationKeyDigest(key)})
	f.key.Store(&key)
}

// A holder of the fleet token tries to take over a datanode it is not:
// a new incarnation up to 60 s in the future, a seq jump within the
// incarnation, and, after a leader change, the real incarnation with a key
// of its own. Each is refused with nothing changed, the real datanode's
// heartbeats go on being acknowledged, and a real restart is still taken.
func TestFleetTokenCannotSpeakForAnotherDatanode(t *testing.T) {
	dir := t.TempDir()
	dnFile := writeFile(t, filepath.Join(dir, "datanodes"), "fleet:"+secretFleet+"\n")
	adminFile := writeFile(t, filepath.Join(dir, "admin"), "alice:"+secretAlice+"\n")
	c := startCluster(t, 3, func(cfg *Config) { cfg.AdminTokenFile, cfg.DatanodeTokenFile = adminFile, dnFile })
	start := time.Now().Add(-time.Minute).UnixMilli()
	victim := newFakeDatanode(t, 1, start, "victim-key")
	seq := uint64(0)
	post := func(tn *tnode, hb wire.Heartbeat) (wire.HeartbeatResponse, reply) {
		t.Helper()
		r := c.do(tn, http.MethodPost, "/v1/heartbeat", hb, bearerHdr(secretFleet)...)
		var hr wire.HeartbeatResponse
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &hr); err != nil {
				t.Fatalf("heartbeat answer %s: %v", r, err)
			}
		}
		return hr, r
	}
	// real sends the victim's next heartbeat to the leader and wants it
	// acknowledged with a lease.
	real := func(what string) {
		t.Helper()
		seq++
		inc := victim.inc.Load()
		l := c.leader()
		eventually(t, what, func() error {
			hr, r := post(l, wire.Heartbeat{ID: 1, Addr: victim.addr, StartTimeMs: inc.StartTimeMs, Seq: seq, IncarnationKey: *victim.key.Load()})
			if r.status != http.StatusOK || hr.LeaseMs == 0 || hr.AckSeq == nil || *hr.AckSeq != seq {
				return errors.New(r.String())
			}
			return nil
		})
	}
	forged := func(tn *tnode, hb wire.Heartbeat, status int, code string) {
		t.Helper()
		hb.ID, hb.Addr = 1, victim.addr
		_, r := post(tn, hb)
		if r.status != status || r.code() != code {
			t.Fatalf("forged heartbeat %+v: %s, want %d %s", hb, r, status, code)
		}
		// The answer says which check failed, never what the address said.
		if strings.HasPrefix(code, "incarnation_") && (strings.Contains(string(r.body), victim.addr) || strings.Contains(string(r.body), fmt.Sprint(start))) {
			t.Fatalf("the refusal tells what the datanode answered: %s", r)
		}
	}
	for range 3 {
		real("the victim's heartbeat")
	}
	l := c.leader()
	soon := time.Now().Add(30 * time.Second).UnixMilli()
	forged(l, wire.Heartbeat{StartTimeMs: soon, Seq: 1, IncarnationKey: "forger"}, http.StatusForbidden, "incarnation_mismatch")
	forged(l, wire.Heartbeat{StartTimeMs: start, Seq: seq + 5000}, http.StatusBadRequest, "bad_request") // no key at all
	forged(l, wire.Heartbeat{StartTimeMs: start, Seq: seq + 5000, IncarnationKey: "forger"}, http.StatusBadRequest, "implausible_heartbeat")
	forged(l, wire.Heartbeat{StartTimeMs: start, Seq: seq + 1, IncarnationKey: "forger"}, http.StatusBadRequest, "implausible_heartbeat")
	real("the victim's heartbeat after the forgeries")

	// A new leader has heard nobody: the forger is first, with the real
	// incarnation and its own key, or a future one.
	var target *tnode
	for _, tn := range c.nodes {
		if tn != l {
			target = tn
			break
		}
	}
	c.mustJSON(l, http.MethodPost, "/admin/cluster/transfer-leadership?to="+target.id, nil, http.StatusOK, nil, bearerHdr(secretAlice)...)
	eventually(t, target.id+" leads", func() error {
		if !target.node.raft.IsReadyLeader() {
			return errors.New("not yet")
		}
		return nil
	})
	forged(target, wire.Heartbeat{StartTimeMs: start, Seq: seq + 1, IncarnationKey: "forger"}, http.StatusForbidden, "incarnation_mismatch")
	forged(target, wire.Heartbeat{StartTimeMs: soon, Seq: 1, IncarnationKey: "forger"}, http.StatusForbidden, "incarnation_mismatch")
	real("the victim's first heartbeat to the new leader")
	real("the victim's second heartbeat to the new leader")

	// A real restart: a new incarnation that the datanode confirms.
	victim.restart(1, time.Now().UnixMilli(), "victim-key-2")
	seq = 0
	real("the restarted victim's heartbeat")
	forged(target, wire.Heartbeat{StartTimeMs: start, Seq: 100, IncarnationKey: "victim-key"}, http.StatusBadRequest, "implausible_heartbeat")
	if d := c.regDatanodesAs(target, secretAlice)[1]; d.Status != "alive" || d.Addr != victim.addr {
		t.Fatalf("victim %+v, want alive at %s", d, victim.addr)
	}
}
