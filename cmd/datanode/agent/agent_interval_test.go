package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/server/wire"
)

// TestAgentKeepsTheLeadersInterval: the agent starts with the 3 s default
// and must beat at the interval the leader's first answer asks for from the
// very next beat on. (It used to wait the default once more after the first
// answer, so a leader with a short --heartbeat-interval declared every new
// datanode failed right after it registered, and failed its regions over.)
func TestAgentKeepsTheLeadersInterval(t *testing.T) {
	const asked = 50 * time.Millisecond
	var mu sync.Mutex
	var beats []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		beats = append(beats, time.Now())
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(wire.HeartbeatResponse{LeaderID: "m1", HeartbeatIntervalMs: asked.Milliseconds(),
			LeaseMs: 1000, Regions: []uint64{}, Open: []uint64{}, Close: []uint64{}})
	}))
	defer srv.Close()
	a, err := New(Config{ID: 1, Addr: "127.0.0.1:1", Metasrv: []string{strings.TrimPrefix(srv.URL, "http://")},
		Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Five beats take about 4 × 50 ms; the bound stays below the 3 s
	// default interval so that one default-length wait fails the test.
	deadline := time.Now().Add(defaultInterval - 500*time.Millisecond)
	for {
		mu.Lock()
		n := len(beats)
		var gaps []time.Duration
		for i := 1; i < n; i++ {
			gaps = append(gaps, beats[i].Sub(beats[i-1]).Round(time.Millisecond))
		}
		mu.Unlock()
		if n >= 5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d heartbeats (gaps %v) in %s with the leader asking for one every %s", n, gaps, defaultInterval-500*time.Millisecond, asked)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
