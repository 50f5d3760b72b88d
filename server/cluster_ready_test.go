package server

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/server/certs/certstest"
)

// syncBuffer collects a node's log lines for a failure report.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readyBound is how soon a restarted follower must report ready. Without
// raftnode's dial retries it took 4–6 s: the leader's replication to the
// stopped peer had backed off (10 ms doubling per failure up to ~10 s, reset
// only by a success), so the first AppendEntries after the restart could
// be seconds away.
const readyBound = 1500 * time.Millisecond

// A follower stopped long enough for the leader's back-off to grow, then
// restarted on its data dir, is ready (GET /admin/ready 200) within
// readyBound, while writes go on.
func TestRestartedFollowerReadySoon(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plaintext", false}, {"peer TLS", true}} {
		t.Run(tc.name, func(t *testing.T) { testRestartedFollowerReadySoon(t, tc.tls) })
	}
}

func testRestartedFollowerReadySoon(t *testing.T, peerTLS bool) {
	logs := map[string]*syncBuffer{}
	var pki *certstest.PKI
	if peerTLS {
		pki = certstest.New(t, "cluster")
	}
	c := startCluster(t, 3, func(cfg *Config) {
		logs[cfg.NodeID] = &syncBuffer{}
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: cfg.NodeID, Level: hclog.Warn, Output: logs[cfg.NodeID]})
		if pki != nil {
			cfg.PeerTLS = certstest.Source(t, pki.Node(cfg.NodeID))
		}
	})
	l := c.leader()
	var f *tnode
	for _, tn := range c.nodes {
		if tn != l {
			f = tn // not c.follower(): the leader could move between two calls
			break
		}
	}
	c.mustJSON(l, http.MethodPost, "/admin/maintenance?enable=true&reason=before", nil, http.StatusOK, nil)
	term := l.node.raft.Status().Term
	c.stop(f)
	// Six seconds down, with writes, so the follower lags and the leader
	// keeps trying (and, without retries, backing off) all along.
	down := time.Now()
	for i := 0; time.Since(down) < 6*time.Second; i++ {
		c.mustJSON(c.leader(), http.MethodPost, "/admin/maintenance?enable="+map[bool]string{true: "true", false: "false"}[i%2 == 0]+"&reason=down", nil, http.StatusOK, nil)
		time.Sleep(250 * time.Millisecond)
	}
	start := time.Now()
	back := c.restart(f)
	opened := time.Since(start)
	var took time.Duration
	for {
		r := c.do(back, http.MethodGet, "/admin/ready", nil)
		took = time.Since(start)
		if r.status == http.StatusOK {
			break
		}
		if took > waitLong {
			t.Fatalf("%s not ready %s after restart: %s", back.id, took, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s ready %s after restart (open took %s, then %s)", back.id, took.Round(time.Millisecond), opened.Round(time.Millisecond), (took - opened).Round(time.Millisecond))
	if took > readyBound {
		t.Logf("leader %s's log:\n%s", l.id, logs[l.id])
		if now := c.leader(); now != l || now.node.raft.Status().Term != term {
			// Not the replication back-off: an election (a leader that
			// lost its lease on a starved machine) takes its own time.
			t.Logf("leadership changed meanwhile: %s in term %d, now %s in term %d", l.id, term, now.id, now.node.raft.Status().Term)
		}
		t.Fatalf("%s ready only %s after restart, want ≤ %s", back.id, took, readyBound)
	}
	// And it has every write.
	c.mustJSON(back, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, nil)
}
