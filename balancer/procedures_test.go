package balancer_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/fsm"
)

func (c *fakeCluster) procedures(paused bool) {
	c.mustApply(fsm.CmdSetProcedures, fsm.SetProcedures{Paused: paused, Time: t0})
}

// While procedures are paused neither a balance round nor a drain round
// proposes anything; status, plan and reports say why (after maintenance
// when both hold). Resumed, both run again.
func TestRunnerPausedByProcedures(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maintenance bool
		want        string
	}{
		{"procedures paused", false, "procedures paused"},
		{"maintenance and procedures paused", true, "maintenance; procedures paused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t)
			c.datanodes(4)
			c.table("t", 1, 1, 1, 1, 1, 1, 2, 4)
			c.adminState(4, fsm.AdminDraining)
			c.procedures(true)
			if tc.maintenance {
				c.maintenance(true)
			}
			k := &clock{now: t0.Add(time.Hour)}
			r := newRunner(c, k, nil)
			before := c.counts(4)

			if _, paused := r.PlanNow(); paused != tc.want {
				t.Errorf("PlanNow paused %q, want %q", paused, tc.want)
			}
			if rep := r.Round(context.Background()); rep.Paused != tc.want || rep.Committed != 0 {
				t.Errorf("Round %+v, want paused %q", rep, tc.want)
			}
			rep, ok := r.DrainRound(context.Background())
			if !ok || rep.Paused != "procedures paused" || rep.DrainLeft != 1 || rep.Planned != 0 {
				t.Errorf("DrainRound %+v ok=%t, want paused with 1 region left", rep, ok)
			}
			st := r.Status()
			wantDrain := []balancer.DrainProgress{{ID: 4, RegionsLeft: 1, Paused: true, PausedReason: "procedures paused"}}
			if !st.Paused || st.PausedReason != tc.want || !reflect.DeepEqual(st.Draining, wantDrain) {
				t.Errorf("Status paused=%t reason=%q draining=%+v, want %q and %+v", st.Paused, st.PausedReason, st.Draining, tc.want, wantDrain)
			}
			if n := len(c.proposals()); n != 0 {
				t.Fatalf("%d proposals while paused", n)
			}
			if got := c.counts(4); !reflect.DeepEqual(got, before) {
				t.Fatalf("counts %v, were %v", got, before)
			}

			c.procedures(false)
			rep, _ = r.DrainRound(context.Background())
			if rep.Paused != "" || rep.Committed != 1 {
				t.Errorf("DrainRound after resume %+v", rep)
			}
			if tc.maintenance {
				if rep := r.Round(context.Background()); rep.Paused != "maintenance" {
					t.Errorf("Round with maintenance still on: paused %q", rep.Paused)
				}
				c.maintenance(false)
			}
			if rep := r.Round(context.Background()); rep.Paused != "" || rep.Committed == 0 {
				t.Errorf("Round after resume %+v", rep)
			}
			if st := r.Status(); st.Paused || len(st.Draining) != 1 || st.Draining[0].Paused {
				t.Errorf("Status after resume %+v", st)
			}
		})
	}
}
