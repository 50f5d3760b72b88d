package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/metasrv/metasrv/fsm"
)

// runBalancerPlan is the dry run: the moves a round would make now.
func (s *Server) runBalancerPlan(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	plan, paused, err := s.lead.BalancerPlan()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"moves": plan.Moves, "spread_before": plan.SpreadBefore,
		"spread_after": plan.SpreadAfter, "reason": plan.Reason, "paused": paused != "", "paused_reason": paused,
		"skipped": plan.Skipped, "skipped_total": plan.SkippedTotal})
	return nil
}

func (s *Server) runBalancerStatus(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	st, err := s.lead.BalancerStatus()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// runAdminState handles POST /admin/datanodes/{id}/{cordon,drain,uncordon}.
func (s *Server) runAdminState(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	id := in.(uint64)
	state := map[string]string{"cordon": fsm.AdminCordoned, "drain": fsm.AdminDraining, "uncordon": fsm.AdminActive}[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]
	a := s.actor(r)
	res, err := s.node.Commit(ctx, fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: id, State: state, By: a.By, Identity: a.Identity, Time: s.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	s.log.Info("datanode admin state set", "datanode", id, "state", state, "index", res.Index)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "admin_state": state, "regions": len(s.fsm.RegionsOf(id))})
	return nil
}
