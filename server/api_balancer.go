package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/metasrv/metasrv/fsm"
)

// runBalancerPlan is the dry run: the moves a round would make now.
func (n *Node) runBalancerPlan(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	t, err := n.currentTerm()
	if err != nil {
		return err
	}
	plan, paused := t.balancer.PlanNow()
	if plan.Moves == nil {
		plan.Moves = []fsm.Move{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"moves": plan.Moves, "spread_before": plan.SpreadBefore,
		"spread_after": plan.SpreadAfter, "reason": plan.Reason, "paused": paused != "", "paused_reason": paused})
	return nil
}

func (n *Node) runBalancerStatus(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	t, err := n.currentTerm()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t.balancer.Status())
	return nil
}

// runAdminState handles POST /admin/datanodes/{id}/{cordon,drain,uncordon}.
func (n *Node) runAdminState(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	id := in.(uint64)
	state := map[string]string{"cordon": fsm.AdminCordoned, "drain": fsm.AdminDraining, "uncordon": fsm.AdminActive}[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]
	res, err := n.apply(ctx, fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: id, State: state, By: clientAddr(r), Time: n.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	if res.Code == fsm.RejectNotFound {
		return errorf(http.StatusNotFound, codeNotFound, "%s", res.Reason)
	}
	if res.Code != "" {
		return badRequest("%s", res.Reason)
	}
	n.log.Info("datanode admin state set", "datanode", id, "state", state, "index", res.Index)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "admin_state": state, "regions": len(n.fsm.RegionsOf(id))})
	return nil
}
