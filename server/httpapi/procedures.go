package httpapi

import (
	"context"
	"net/http"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

// GreptimeDB's procedure pause: /admin/procedure-manager/{status,pause,resume}.
// While paused the FSM refuses every region move and table create or drop
// (fsm/procedures_guard.go); the answers here only read and set the flag.

func procedureStatus(paused bool) string {
	if paused {
		return wire.ProceduresPaused
	}
	return wire.ProceduresRunning
}

type proceduresRead struct{ verbose bool }

func parseProceduresRead(r *http.Request, _ []byte) (any, error) {
	v, err := boolParam(r, "verbose", false)
	return proceduresRead{verbose: v}, err
}

func (s *Server) runProceduresStatus(_ context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	p := s.fsm.Procedures()
	if !in.(proceduresRead).verbose {
		writeJSON(w, http.StatusOK, wire.ProcedureStatus{Status: procedureStatus(p.Paused)})
		return nil
	}
	v := wire.ProcedureStatusVerbose{Status: procedureStatus(p.Paused), Paused: p.Paused, By: p.By, Identity: p.Identity, Reason: p.Reason, Epoch: p.Epoch}
	if p.Since != nil {
		t := p.Since.UTC()
		v.Since = &t
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// parseProceduresSet validates a pause (paused) or resume: the optional
// reason and by parameters, as maintenance checks them.
func (s *Server) parseProceduresSet(paused bool) func(r *http.Request, _ []byte) (any, error) {
	return func(r *http.Request, _ []byte) (any, error) {
		reason, a, err := s.reasonAndActor(r)
		if err != nil {
			return nil, err
		}
		return fsm.SetProcedures{Paused: paused, Reason: reason, By: a.By, Identity: a.Identity}, nil
	}
}

// runProceduresSet proposes SetProcedures, a protocol 3 command: until
// every voter speaks protocol 3, Propose refuses it (503
// upgrade_in_progress) and nothing is applied.
func (s *Server) runProceduresSet(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	c := in.(fsm.SetProcedures)
	c.Time = s.cfg.Now().UTC()
	res, err := s.node.Commit(ctx, fsm.CmdSetProcedures, c)
	if err != nil {
		return err
	}
	s.log.Info("procedures set", "paused", c.Paused, "by", c.By, "reason", c.Reason, "index", res.Index)
	writeJSON(w, http.StatusOK, wire.ProcedureStatus{Status: procedureStatus(c.Paused)})
	return nil
}
