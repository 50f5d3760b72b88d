package agent

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/metasrv/metasrv/server/wire"
)

// TestSendBody: one POST /v1/heartbeat with exactly the body the datanode
// has always sent (no region_stats), and the answer decoded.
func TestSendBody(t *testing.T) {
	var got, path, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, path, ctype = string(b), r.Method+" "+r.URL.Path, r.Header.Get("Content-Type")
		_, _ = io.WriteString(w, `{"leader_id":"m1","heartbeat_interval_ms":500,"lease_ms":2500,"regions":[1,2],"open":[2],"close":[3]}`)
	}))
	defer srv.Close()
	resp, hint, err := Send(context.Background(), srv.Client(), srv.URL, "",
		wire.Heartbeat{ID: 7, Addr: "127.0.0.1:4001", StartTimeMs: 42, Seq: 3, Regions: []uint64{}})
	if err != nil || hint != "" {
		t.Fatalf("Send: %v (hint %q)", err, hint)
	}
	if want := `{"id":7,"addr":"127.0.0.1:4001","start_time_ms":42,"seq":3,"regions":[]}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if path != "POST /v1/heartbeat" || ctype != "application/json" {
		t.Errorf("request %s with Content-Type %q", path, ctype)
	}
	want := wire.HeartbeatResponse{LeaderID: "m1", HeartbeatIntervalMs: 500, LeaseMs: 2500, Regions: []uint64{1, 2}, Open: []uint64{2}, Close: []uint64{3}}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("answer %+v, want %+v", resp, want)
	}
}

// TestSendNotLeader: a not_leader answer is an error naming the leader.
func TestSendNotLeader(t *testing.T) {
	const body = `{"error":"not the leader","code":"not_leader","leader_id":"m2","leader_rpc_addr":"127.0.0.2:3002"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, body+"\n")
	}))
	defer srv.Close()
	_, hint, err := Send(context.Background(), srv.Client(), srv.URL, "", wire.Heartbeat{ID: 1, Addr: "a:1"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || hint != "127.0.0.2:3002" {
		t.Fatalf("Send: %v (hint %q), want a 503 StatusError naming 127.0.0.2:3002", err, hint)
	}
	if want := "status 503: " + body; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
