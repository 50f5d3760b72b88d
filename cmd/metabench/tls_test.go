package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPairRatios(t *testing.T) {
	tests := []struct {
		name     string
		num, den []float64
		want     []float64
	}{
		{"one per pair", []float64{90, 50}, []float64{100, 100}, []float64{0.9, 0.5}},
		{"zero denominator skipped", []float64{90, 50}, []float64{0, 100}, []float64{0.5}},
		{"NaN skipped", []float64{math.NaN(), 50}, []float64{100, 100}, []float64{0.5}},
		{"shorter side bounds", []float64{90}, []float64{100, 100}, []float64{0.9}},
		{"empty", nil, nil, nil},
	}
	for _, tt := range tests {
		if got := pairRatios(tt.num, tt.den); !slices.Equal(got, tt.want) {
			t.Errorf("%s: pairRatios(%v, %v) = %v, want %v", tt.name, tt.num, tt.den, got, tt.want)
		}
	}
}

func TestRatioFormattingAndVerdicts(t *testing.T) {
	if got := fmtRatio(0.934); got != "0.93×" {
		t.Errorf("fmtRatio(0.934) = %q", got)
	}
	if got := fmtRatio(math.NaN()); got != "–" {
		t.Errorf("fmtRatio(NaN) = %q", got)
	}
	if got := fmtRatio(median(nil)); got != "–" {
		t.Errorf("fmtRatio(median(nil)) = %q", got)
	}
	if got := plural(1, "pair", "pairs") + ", " + plural(3, "pair", "pairs"); got != "1 pair, 3 pairs" {
		t.Errorf("plural: %q", got)
	}
	if got := durRatio(ms(110), ms(100)); math.Abs(got-1.1) > 1e-9 {
		t.Errorf("durRatio(110ms, 100ms) = %v", got)
	}
	if got := durRatio(0, ms(100)); !math.IsNaN(got) {
		t.Errorf("durRatio(0, 100ms) = %v, want NaN", got)
	}
	tests := []struct {
		got, want string
	}{
		{verdictAtLeast(0.90, 0.85), "met"},
		{verdictAtLeast(0.85, 0.85), "met"},
		{verdictAtLeast(0.80, 0.85), "**missed** by 0.05"},
		{verdictAtLeast(math.NaN(), 0.85), "**not measured**"},
		{verdictAtMost(1.05, 1.10), "met"},
		{verdictAtMost(1.10, 1.10), "met"},
		{verdictAtMost(1.25, 1.10), "**missed** by 0.15"},
		{verdictAtMost(math.NaN(), 1.10), "**not measured**"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("verdict %d = %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestMatchSamples(t *testing.T) {
	text := []byte(`# HELP metasrv_raft_conn_refused_total Raft connections refused.
# TYPE metasrv_raft_conn_refused_total counter
metasrv_raft_conn_refused_total{reason="role"} 2
metasrv_raft_conn_refused_total{reason="plaintext"} 1
metasrv_tls_handshakes_total 7
metasrv_raft_leader_changes_total 3
go_goroutines 40
`)
	got := matchSamples(text, memberMetricWords)
	want := map[string]float64{
		`metasrv_raft_conn_refused_total{reason="role"}`:      2,
		`metasrv_raft_conn_refused_total{reason="plaintext"}`: 1,
		`metasrv_tls_handshakes_total`:                        7,
	}
	if len(got) != len(want) {
		t.Fatalf("matchSamples = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("matchSamples[%s] = %v, want %v", k, got[k], v)
		}
	}
}

func TestDialCounterCountsOnlySuccessfulDials(t *testing.T) {
	var d dialCounter
	if d.wrap(nil) != nil {
		t.Fatal("wrap(nil) is not nil: the transport would lose its default dialer")
	}
	fail := true
	f := d.wrap(func(ctx context.Context, network, addr string) (net.Conn, error) {
		if fail {
			return nil, errors.New("refused")
		}
		c1, c2 := net.Pipe()
		c2.Close()
		return c1, nil
	})
	if _, err := f(context.Background(), "tcp", "x:1"); err == nil {
		t.Fatal("want the error through")
	}
	fail = false
	for range 3 {
		c, err := f(context.Background(), "tcp", "x:1")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if n := d.n.Load(); n != 3 {
		t.Errorf("counted %d dials, want 3", n)
	}
}

// cellWith is a tls cell whose two write cells made ops writes each in one
// second, and whose leader kills took fo.
func cellWith(run int, mode string, leaderOps, followerOps int, fo ...time.Duration) *tlsCell {
	return &tlsCell{run: run, mode: mode, fo: failoverResult{times: fo},
		dials: map[string]int64{"setup": 3, warmupOf(targetLeader): 64, targetLeader: 0, warmupOf(targetFollower): 64,
			targetFollower: 1, "failover": 5},
		writes: map[string]loadResult{
			targetLeader:   {OK: leaderOps, Elapsed: time.Second, Lat: []time.Duration{ms(1), ms(2)}},
			targetFollower: {OK: followerOps, Elapsed: time.Second, Lat: []time.Duration{ms(2), ms(4)}},
		}}
}

func TestTLSResultRatiosAndReport(t *testing.T) {
	r := &tlsResult{opts: tlsOpts{conc: 64, duration: 5 * time.Second, trials: 2, failover: failoverOpts{reqTimeout: 250 * time.Millisecond}},
		cells: []*tlsCell{
			cellWith(1, modePlain, 1000, 800, ms(900), ms(1000)),
			cellWith(1, modeTLS, 900, 600, ms(990), ms(1100)),
			cellWith(2, modePlain, 2000, 1000, ms(950)),
			cellWith(2, modeTLS, 1800, 900, ms(1200)),
			cellWith(3, modePlain, 5000, 5000), // a pair cut short: not in the ratios
		}}
	if got, want := r.opsRatios(targetLeader), []float64{0.9, 0.9}; !slices.Equal(got, want) {
		t.Errorf("leader ratios = %v, want %v", got, want)
	}
	if got, want := r.opsRatios(targetFollower), []float64{0.75, 0.9}; !slices.Equal(got, want) {
		t.Errorf("follower ratios = %v, want %v", got, want)
	}
	ds, failed := r.failoverTimes(modeTLS)
	if len(ds) != 3 || failed != 0 {
		t.Errorf("TLS failover times %v, failed %d", ds, failed)
	}
	tg := r.targets()
	if len(tg) != 3 {
		t.Fatalf("targets = %v", tg)
	}
	if tg[0][1] != "0.90×" || tg[0][2] != "met" {
		t.Errorf("leader target = %v", tg[0])
	}
	if tg[1][1] != "0.82×" || !strings.HasPrefix(tg[1][2], "**missed**") {
		t.Errorf("follower target = %v", tg[1])
	}
	// Medians: plaintext 950 ms, TLS 1100 ms → 1.16×, missed.
	if !strings.HasPrefix(tg[2][1], "1.16×") || tg[2][2] != "**missed** by 0.06" {
		t.Errorf("failover target = %v", tg[2])
	}

	var b strings.Builder
	r.markdown(func(format string, a ...any) { fmt.Fprintf(&b, format, a...) })
	md := b.String()
	for _, want := range []string{
		"## 4. TLS cost",
		"| leader (direct) | **0.90×** | 0.90, 0.90 |",
		"| follower (forwarded) | **0.82×** | 0.75, 0.90 |",
		"| TLS | 3, 3 | 64, 64 | 0, 0 | 64, 64 | 1, 1 | 5, 5 | 137, 137 |",
		"| setup | leader (direct) warm-up | leader (direct) measured |",
		"| follower (forwarded) | TLS − plaintext | +0 | +0 | +0 | +0 | +0 |",
		"no counter of them in `/metrics`",
		"— 2 pairs,",
		"killed 2 times",
		"median **1.16×**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestMarkTimesAndFirstIn(t *testing.T) {
	log := `=== start 2026-12-03T13:06:45.600073957Z --node-id n1
2026-12-03T13:06:45.913Z [WARN]  metasrv.raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=
2026-12-03T13:06:45.919Z [INFO]  metasrv.raft: entering leader state: leader="Node at 127.47.48.11:17003 [Leader]"
garbage entering leader state
2026-12-03T13:07:45.100Z [WARN]  metasrv.raft: heartbeat timeout reached, starting election: last-leader-addr=x
`
	d, l := markTimes(strings.NewReader(log), markDetect, markLeader)
	if len(d) != 2 || len(l) != 1 {
		t.Fatalf("markTimes: %v, %v", d, l)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !l[0].Equal(at("2026-12-03T13:06:45.919Z")) {
		t.Errorf("leader at %v", l[0])
	}
	// A kill at .9135 still finds the .913 line (log times are cut to the ms).
	kill := at("2026-12-03T13:06:45.9135Z")
	got, ok := firstIn(d, kill, kill.Add(time.Second))
	if !ok || !got.Equal(d[0]) {
		t.Errorf("firstIn = %v, %v", got, ok)
	}
	if _, ok := firstIn(d, kill.Add(10*time.Millisecond), kill.Add(time.Second)); ok {
		t.Error("firstIn found a line outside the window")
	}
}

func TestStepMedians(t *testing.T) {
	c := cellWith(1, modeTLS, 1, 1, ms(600), ms(700), ms(800))
	c.steps = []foSteps{
		{detect: ms(400), elect: ms(420), ok: true},
		{ok: false},
		{detect: ms(500), elect: ms(540), ok: true},
	}
	r := &tlsResult{cells: []*tlsCell{c}}
	st := r.stepMedians(modeTLS)
	want := stepSummary{n: 2, of: 3, detect: ms(450), elect: ms(30), serve: ms(220), total: ms(700)}
	if st != want {
		t.Errorf("stepMedians = %+v, want %+v", st, want)
	}
}
