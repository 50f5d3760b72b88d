package fsm

import "time"

// Procedures is the procedure manager's switch, GreptimeDB's procedure
// pause: while Paused the FSM refuses every metadata change that moves or
// creates regions (procedures_guard.go). Epoch goes up on every change;
// By, Reason and Since describe the last change.
type Procedures struct {
	Paused bool   `json:"paused"`
	Epoch  uint64 `json:"epoch"`
	Reason string `json:"reason"`
	By     string `json:"by"`
	// Identity is who authenticated the last change (IdentityProtocol).
	Identity string `json:"identity,omitempty"`
	// Since is when Paused last changed value; nil until the first change.
	Since *time.Time `json:"since"`
}

// SetProcedures pauses or resumes the procedure manager (protocol 3).
type SetProcedures struct {
	Paused   bool      `json:"paused"`
	Reason   string    `json:"reason,omitempty"`
	By       string    `json:"by,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
}

// applySetProcedures pauses or resumes. The state is the flag: pausing
// while paused (or resuming while running) is an applied no-op that bumps
// no epoch, records no event and keeps the By and Reason of the change
// that is in effect, so a retried write is harmless.
func (f *FSM) applySetProcedures(index uint64, c SetProcedures) Result {
	cur := f.st.Procedures
	if cur.Paused == c.Paused {
		return Result{Applied: true}
	}
	t := c.Time
	f.st.Procedures = Procedures{Paused: c.Paused, Epoch: cur.Epoch + 1, Reason: c.Reason, By: c.By, Identity: c.Identity, Since: &t}
	typ := EventProceduresResumed
	if c.Paused {
		typ = EventProceduresPaused
	}
	f.addEvent(Event{Index: index, Time: c.Time, Type: typ, By: c.By, Identity: c.Identity, Reason: c.Reason, Epoch: cur.Epoch + 1})
	return Result{Applied: true}
}

// Procedures returns the procedure manager's state.
func (f *FSM) Procedures() Procedures {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return cloneProcedures(f.st.Procedures)
}

func cloneProcedures(p Procedures) Procedures {
	if p.Since != nil {
		t := *p.Since
		p.Since = &t
	}
	return p
}
