package failover_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

func (c *fakeCluster) setProcedures(paused bool) {
	c.t.Helper()
	c.mustApply(fsm.CmdSetProcedures, fsm.SetProcedures{Paused: paused, Reason: "test", Time: c.clk.Now()})
}

// While procedures are paused the runner plans and proposes nothing, says
// why, and reports the failed datanode as deferred; resumed, the failover
// runs at the next tick.
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
			e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
			e.c.setProcedures(true)
			if tc.maintenance {
				e.c.setMaintenance(true)
			}
			before := e.c.owners()
			e.pass(6*time.Second, 2, 3)
			for i := 0; i < 3; i++ {
				rep := e.tick()
				checkReport(t, rep, []uint64{1}, []uint64{1}, nil, false, 0, 0)
				if rep.Paused != tc.want || e.r.Paused() != tc.want {
					t.Errorf("paused %q / %q, want %q", rep.Paused, e.r.Paused(), tc.want)
				}
				e.pass(time.Second, 2, 3)
			}
			if n := e.c.nProposals(); n != 0 {
				t.Fatalf("%d proposals while paused, want none", n)
			}
			if !e.r.Deferred(1) || e.r.Deferred(2) {
				t.Errorf("Deferred(1)=%t Deferred(2)=%t, want true false", e.r.Deferred(1), e.r.Deferred(2))
			}
			if got := e.c.owners(); !reflect.DeepEqual(got, before) {
				t.Errorf("routes changed while paused: %v, were %v", got, before)
			}
			e.c.setProcedures(false)
			if tc.maintenance {
				e.c.setMaintenance(false)
			}
			rep := e.tick()
			checkReport(t, rep, []uint64{1}, nil, nil, false, 2, 0)
			if rep.Paused != "" || e.r.Paused() != "" || e.r.Deferred(1) {
				t.Errorf("after resume: paused %q, deferred %t", rep.Paused, e.r.Deferred(1))
			}
		})
	}
}

// A pause that commits after the runner looked is the FSM's to refuse:
// the proposal is rejected as procedures_paused and the failover deferred.
func TestRunnerRejectedForProceduresIsDeferred(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	e.c.beforePropose = func() { e.c.setProcedures(true) }
	before := e.c.owners()
	e.pass(6*time.Second, 2, 3)
	rep := e.tick()
	checkReport(t, rep, []uint64{1}, []uint64{1}, nil, false, 0, 2)
	if !e.r.Deferred(1) {
		t.Errorf("Deferred(1) = false after a procedures_paused rejection")
	}
	if got := e.c.owners(); !reflect.DeepEqual(got, before) {
		t.Errorf("routes changed: %v, were %v", got, before)
	}
}
