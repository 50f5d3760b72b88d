package balancer

import "strings"

// Pause reasons that come from the replicated state rather than from a
// datanode.
const (
	reasonMaintenance      = "maintenance"
	reasonProceduresPaused = "procedures paused"
)

// statePaused is why balancing must pause by the replicated state alone:
// "maintenance", "procedures paused", both joined by "; " (maintenance
// first), or "".
func (r *Runner) statePaused() string {
	var why []string
	if r.cluster.Maintenance().Enabled {
		why = append(why, reasonMaintenance)
	}
	if r.cluster.Procedures().Paused {
		why = append(why, reasonProceduresPaused)
	}
	return strings.Join(why, "; ")
}

// drainPaused is why drain must pause ("" when it may run). Drain is
// operator-initiated, so maintenance does not stop it; the procedure pause
// stops every move, drain included.
func (r *Runner) drainPaused() string {
	if r.cluster.Procedures().Paused {
		return reasonProceduresPaused
	}
	return ""
}
