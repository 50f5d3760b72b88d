package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/cmd/datanode/agent"
	"github.com/metasrv/metasrv/server"
)

// staleProxy stands between a datanode and metasrv. Once armed, it sends
// the leader the datanode's last heartbeat again instead of each new one
// (so the leader, which ignores stale heartbeats, sees the datanode fall
// silent, lets its lease lapse and fails its regions over), and hands the
// datanode, for each new heartbeat, the last answer it got before arming:
// a 200 that lists the region and grants a lease, but for an older
// heartbeat. A datanode that renews its lease from any 200 keeps serving
// the region while the leader gives it to another.
type staleProxy struct {
	target string
	mu     sync.Mutex
	armed  bool
	last   []byte // the last heartbeat forwarded before arming
	answer []byte // and its answer
}

func (p *staleProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	armed, send := p.armed, body
	if armed {
		send = p.last
	}
	p.mu.Unlock()
	resp, err := http.Post("http://"+p.target+r.URL.Path, "application/json", bytes.NewReader(send))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p.mu.Lock()
	if armed {
		b = p.answer
	} else if resp.StatusCode == http.StatusOK {
		p.last, p.answer = body, b
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// No moment at which two datanodes serve one region, through a stale
// heartbeat race: datanode 1's heartbeats reach the leader only as a replay
// of an old one, so the leader moves its region to datanode 2, while
// datanode 1 keeps getting 200 answers granting it the region. Both datanodes' served regions are
// sampled every 50 ms.
func TestNoDoubleServingThroughStaleHeartbeatAnswers(t *testing.T) {
	node, err := server.New(server.Config{
		NodeID: "n1", RPCAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		HeartbeatInterval: 200 * time.Millisecond, RegionLease: time.Second, FailoverTick: 50 * time.Millisecond,
		MinStdDeviation: 50 * time.Millisecond, AcceptableHeartbeatPause: 500 * time.Millisecond,
		FirstHeartbeatEstimate: 200 * time.Millisecond,
		Logger:                 hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.Discard}),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = node.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = node.Close(ctx)
	}()
	base := "http://" + node.Addr()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("ready", func() bool {
		resp, err := http.Get(base + "/admin/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	proxy := &staleProxy{target: node.Addr()}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	startAgent := func(id uint64, metasrv string) *agent.Agent {
		a, err := agent.New(agent.Config{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 4100+id), Metasrv: []string{metasrv},
			Logger: hclog.NewNullLogger()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
		return a
	}
	a1 := startAgent(1, strings.TrimPrefix(ps.URL, "http://"))
	wait("datanode 1 registered", func() bool { return len(node.FSM().Datanodes()) == 1 })
	resp, err := http.Post(base+"/admin/tables", "application/json", strings.NewReader(`{"name":"t","regions":1}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create table: %v %v", resp, err)
	}
	resp.Body.Close()
	region := node.FSM().Regions()[0].ID
	wait("datanode 1 serves the region", func() bool { return slices.Contains(a1.Serving(), region) })
	a2 := startAgent(2, node.Addr())
	wait("datanode 2 registered", func() bool { return len(node.FSM().Datanodes()) == 2 })

	proxy.mu.Lock()
	proxy.armed = true
	proxy.mu.Unlock()
	overlaps, samples, movedAt := 0, 0, -1
	for samples < 200 {
		s1, s2 := slices.Contains(a1.Serving(), region), slices.Contains(a2.Serving(), region)
		if s1 && s2 {
			overlaps++
		}
		if s2 && movedAt < 0 {
			movedAt = samples
		}
		samples++
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d samples, %d overlaps, datanode 2 serving from sample %d", samples, overlaps, movedAt)
	if movedAt < 0 {
		t.Fatalf("the region never moved to datanode 2 in %d samples (owner %d)", samples, node.FSM().Regions()[0].Datanode)
	}
	if overlaps != 0 {
		t.Fatalf("datanodes 1 and 2 both served region %d in %d of %d samples", region, overlaps, samples)
	}
}
