package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/server/wire"
)

// The lease is renewed only by an answer that acknowledges the heartbeat
// it answers (its seq); an answer to one the leader did not take grants
// nothing, even with lease_ms set. A leader older than ack_seq still works.
func TestAgentRenewsTheLeaseOnlyForAnAcknowledgedHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ack   func(seq uint64) *uint64
		serve bool
	}{
		{"acknowledged", func(seq uint64) *uint64 { return &seq }, true},
		{"not taken (stale)", func(uint64) *uint64 { z := uint64(0); return &z }, false},
		{"another heartbeat's seq", func(seq uint64) *uint64 { o := seq + 7; return &o }, false},
		{"leader without ack_seq", func(uint64) *uint64 { return nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var beats atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var hb wire.Heartbeat
				_ = json.NewDecoder(r.Body).Decode(&hb)
				beats.Add(1)
				_ = json.NewEncoder(w).Encode(wire.HeartbeatResponse{LeaderID: "m1", HeartbeatIntervalMs: 20,
					LeaseMs: 10_000, Regions: []uint64{5}, Open: []uint64{5}, Close: []uint64{}, AckSeq: tc.ack(hb.Seq)})
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
			deadline := time.Now().Add(20 * time.Second)
			for beats.Load() < 3 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if beats.Load() < 3 {
				t.Fatal("fewer than 3 heartbeats")
			}
			if got := a.Serving(); slices.Equal(got, []uint64{5}) != tc.serve {
				t.Fatalf("serving %v after 3 answers, want serving region 5: %t", got, tc.serve)
			}
		})
	}
}

// The agent sends its secret with every heartbeat, also when metasrv does
// not ask for one, so authentication can be switched on agents first.
func TestAgentSendsItsToken(t *testing.T) {
	const secret = "datanode-1-secret-0123456789abcdef0123"
	file := t.TempDir() + "/token"
	if err := os.WriteFile(file, []byte("# datanode 1\n"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		_ = json.NewEncoder(w).Encode(wire.HeartbeatResponse{LeaderID: "m1", HeartbeatIntervalMs: 20, LeaseMs: 1000})
	}))
	defer srv.Close()
	a, err := New(Config{ID: 1, Addr: "127.0.0.1:1", Metasrv: []string{strings.TrimPrefix(srv.URL, "http://")},
		Logger: hclog.NewNullLogger(), TokenFile: file})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case h := <-got:
		if h != "Bearer "+secret {
			t.Fatalf("Authorization %q", h)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no heartbeat")
	}
}
