package leader

import (
	"context"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
)

// expiryWorker ends a maintenance window when its ttl runs out. It is
// re-armed from the FSM on every change and on every new leadership, and
// proposes ExpireMaintenance{epoch}: the FSM applies it only if that same
// window is still current, so a stale timer cannot end a newer one.
func (l *Leader) expiryWorker(ctx context.Context) {
	for {
		changed := l.fsm.Changed()
		m := l.fsm.Maintenance()
		var fire <-chan time.Time
		var t *time.Timer
		if m.Enabled && m.ExpiresAt != nil {
			t = time.NewTimer(max(m.ExpiresAt.Sub(l.cfg.Now()), 0))
			fire = t.C
		}
		select {
		case <-ctx.Done():
			stopTimer(t)
			return
		case <-changed:
			stopTimer(t)
		case <-fire:
			res, err := l.node.Propose(ctx, fsm.CmdExpireMaintenance, fsm.ExpireMaintenance{Epoch: m.Epoch, Time: l.cfg.Now().UTC()})
			switch {
			case err != nil:
				l.log.Warn("maintenance expiry write failed; retrying", "epoch", m.Epoch, "error", err)
				raftnode.SleepCtx(ctx, 200*time.Millisecond)
			case res.Applied:
				l.log.Info("maintenance window expired", "epoch", m.Epoch)
			}
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
