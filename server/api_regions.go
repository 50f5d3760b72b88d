package server

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
)

// maxRegionsPerTable bounds POST /admin/tables.
const maxRegionsPerTable = 10000

var tableNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)

type createTableRequest struct {
	Name    string `json:"name"`
	Regions *int   `json:"regions"`
}

func parseCreateTable(_ *http.Request, body []byte) (any, error) {
	var req createTableRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	if !tableNameRE.MatchString(req.Name) {
		return nil, badRequest("name %q: want 1 to 128 letters, digits, '_', '.', '-', starting with a letter or '_'", req.Name)
	}
	if req.Regions == nil {
		return nil, badRequest("regions is required: the number of regions (1 to %d)", maxRegionsPerTable)
	}
	if *req.Regions < 1 || *req.Regions > maxRegionsPerTable {
		return nil, badRequest("regions=%d: want 1 to %d", *req.Regions, maxRegionsPerTable)
	}
	return req, nil
}

// routeView is one region's route as the API shows it.
type routeView struct {
	ID       uint64 `json:"id"`
	Table    string `json:"table"`
	Datanode uint64 `json:"datanode"`
	Version  uint64 `json:"version"`
	// InFlight: the owner has not reported serving it yet (leader's view).
	InFlight bool `json:"in_flight"`
}

func (n *Node) routeViews(t *leaderTerm, regions []fsm.Region) []routeView {
	out := make([]routeView, 0, len(regions))
	for _, r := range regions {
		v := routeView{ID: r.ID, Table: r.Table, Datanode: r.Datanode, Version: r.Version}
		if t != nil {
			v.InFlight = !t.mon.Reported(r.Datanode, r.ID)
		}
		out = append(out, v)
	}
	return out
}

func (n *Node) runCreateTable(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	req := in.(createTableRequest)
	t, err := n.currentTerm()
	if err != nil {
		return err
	}
	if _, exists := n.tableByName(req.Name); exists {
		return errorf(http.StatusConflict, codeConflict, "table %q already exists", req.Name)
	}
	placement := failover.Spread(*req.Regions, n.liveTargets(t))
	if placement == nil {
		return noAliveDatanode()
	}
	res, err := n.apply(ctx, fsm.CmdCreateTable, fsm.CreateTable{Name: req.Name, Placement: placement, By: clientAddr(r), Time: n.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	if res.Code != "" { // exists, or a placement target vanished meanwhile
		return errorf(http.StatusConflict, codeConflict, "%s", res.Reason)
	}
	n.log.Info("table created", "table", req.Name, "regions", len(res.Regions), "index", res.Index)
	writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "regions": n.routeViews(t, res.Regions)})
	return nil
}

func (n *Node) tableByName(name string) (fsm.Table, bool) {
	for _, t := range n.fsm.Tables() {
		if t.Name == name {
			return t, true
		}
	}
	return fsm.Table{}, false
}

func (n *Node) runListTables(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	writeJSON(w, http.StatusOK, n.fsm.Tables())
	return nil
}

func parseTableName(r *http.Request, _ []byte) (any, error) {
	name := mux.Vars(r)["name"]
	if !tableNameRE.MatchString(name) {
		return nil, badRequest("table name %q is not valid", name)
	}
	return name, nil
}

func (n *Node) runDropTable(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	name := in.(string)
	res, err := n.apply(ctx, fsm.CmdDropTable, fsm.DropTable{Name: name, By: clientAddr(r), Time: n.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	if res.Code == fsm.RejectNotFound {
		return errorf(http.StatusNotFound, codeNotFound, "%s", res.Reason)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dropped": name})
	return nil
}

type regionsQuery struct {
	table    string
	datanode uint64
}

func parseRegionsQuery(r *http.Request, _ []byte) (any, error) {
	q := r.URL.Query()
	rq := regionsQuery{table: q.Get("table")}
	if q.Has("datanode") {
		id, err := parseID(q.Get("datanode"), "datanode")
		if err != nil {
			return nil, err
		}
		rq.datanode = id
	}
	return rq, nil
}

func parseID(s, what string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, badRequest("%s id %q: want a positive integer", what, s)
	}
	return id, nil
}

func (n *Node) runListRegions(_ context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	rq := in.(regionsQuery)
	var regions []fsm.Region
	for _, r := range n.fsm.Regions() {
		if (rq.table == "" || r.Table == rq.table) && (rq.datanode == 0 || r.Datanode == rq.datanode) {
			regions = append(regions, r)
		}
	}
	writeJSON(w, http.StatusOK, n.routeViews(n.term.Load(), regions))
	return nil
}

type datanodeView struct {
	ID                    uint64  `json:"id"`
	Addr                  string  `json:"addr"`
	Status                string  `json:"status"`
	Phi                   float64 `json:"phi"`
	SecondsSinceHeartbeat float64 `json:"seconds_since_heartbeat"`
	Regions               int     `json:"regions"`
	AdminState            string  `json:"admin_state"`
	LeaseExpired          bool    `json:"lease_expired"`
	FailoverDeferred      bool    `json:"failover_deferred"`
	FailoverBraked        bool    `json:"failover_braked"`
}

func (n *Node) runListDatanodes(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	t := n.term.Load()
	counts := n.fsm.RegionCounts()
	now := n.cfg.Now()
	out := []datanodeView{}
	for _, d := range n.fsm.Datanodes() {
		v := datanodeView{ID: d.ID, Addr: d.Addr, Status: failover.StatusUnknown, Regions: counts[d.ID], AdminState: d.AdminState,
			SecondsSinceHeartbeat: -1}
		if t != nil {
			st := t.mon.Status(d.ID)
			v.Status, v.Phi, v.LeaseExpired = st.Status, round2(st.Phi), st.LeaseExpired
			v.SecondsSinceHeartbeat = round2(sinceSeconds(now, st.LastHeartbeat))
			v.FailoverDeferred = t.runner.Deferred(d.ID)
			v.FailoverBraked = t.runner.Braked() && st.Status == failover.StatusFailed
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func round2(f float64) float64 {
	if f > 1e9 {
		return 1e9 // phi of a long-dead datanode; keep the JSON finite
	}
	return float64(int64(f*100)) / 100
}

func parseDatanodeID(r *http.Request, _ []byte) (any, error) {
	return parseID(mux.Vars(r)["id"], "datanode")
}

func (n *Node) runRemoveDatanode(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	id := in.(uint64)
	t, err := n.currentTerm()
	if err != nil {
		return err
	}
	// Removing it would drop the only record that it may still serve
	// regions under a lease: wait until it has closed them or its lease ran out.
	if t.mon.StillServing(id) {
		return errorf(http.StatusConflict, codeConflict, "datanode %d may still serve regions under its lease; retry once it has closed them or its lease has run out", id)
	}
	res, err := n.apply(ctx, fsm.CmdRemoveDatanode, fsm.RemoveDatanode{ID: id, By: clientAddr(r), Time: n.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	switch res.Code {
	case "":
	case fsm.RejectNotFound:
		return errorf(http.StatusNotFound, codeNotFound, "%s", res.Reason)
	default:
		return errorf(http.StatusConflict, codeConflict, "%s", res.Reason)
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": id})
	return nil
}

type migrateRequest struct {
	region, to, from uint64
}

func parseMigrate(r *http.Request, _ []byte) (any, error) {
	region, err := parseID(mux.Vars(r)["id"], "region")
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	if !q.Has("to") {
		return nil, badRequest("missing parameter to: the target datanode id")
	}
	to, err := parseID(q.Get("to"), "datanode")
	if err != nil {
		return nil, err
	}
	mr := migrateRequest{region: region, to: to}
	if q.Has("from") {
		if mr.from, err = parseID(q.Get("from"), "datanode"); err != nil {
			return nil, err
		}
	}
	return mr, nil
}

// runMigrate is a manual migration: allowed during maintenance, because an
// operator asked for it.
func (n *Node) runMigrate(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	mr := in.(migrateRequest)
	t, err := n.currentTerm()
	if err != nil {
		return err
	}
	reg, ok := n.fsm.Region(mr.region)
	if !ok {
		return errorf(http.StatusNotFound, codeNotFound, "no region %d", mr.region)
	}
	if _, ok := n.fsm.Datanode(mr.to); !ok {
		return errorf(http.StatusNotFound, codeNotFound, "no datanode %d", mr.to)
	}
	if mr.from != 0 && mr.from != reg.Datanode {
		return errorf(http.StatusConflict, codeConflict, "region %d is on datanode %d, not %d", reg.ID, reg.Datanode, mr.from)
	}
	if reg.Datanode == mr.to {
		writeJSON(w, http.StatusOK, n.routeViews(t, []fsm.Region{reg})[0])
		return nil
	}
	if st := t.mon.Status(mr.to); st.Status != failover.StatusAlive {
		return errorf(http.StatusConflict, codeConflict, "target datanode %d is %s, not alive", mr.to, st.Status)
	}
	res, err := n.apply(ctx, fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, By: clientAddr(r), Time: n.cfg.Now().UTC(),
		Moves: []fsm.Move{{Region: reg.ID, From: reg.Datanode, To: mr.to}}})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return errorf(http.StatusConflict, codeConflict, "%s", res.Rejected[0].Reason)
	}
	reg, _ = n.fsm.Region(mr.region)
	n.log.Info("region migrated", "region", reg.ID, "to", mr.to, "index", res.Index)
	writeJSON(w, http.StatusOK, n.routeViews(t, []fsm.Region{reg})[0])
	return nil
}

// GreptimeDB-compatible shapes for its scripts.

type nodeLease struct {
	Name      map[string]uint64 `json:"name"`
	HumanTime string            `json:"human_time"`
	Lease     struct {
		TimestampMillis int64  `json:"timestamp_millis"`
		NodeAddr        string `json:"node_addr"`
	} `json:"lease"`
}

func (n *Node) runNodeLease(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	t, err := n.currentTerm()
	if err != nil {
		return err
	}
	out := []nodeLease{}
	for _, hbs := range t.mon.History() {
		last := hbs[len(hbs)-1]
		var l nodeLease
		l.Name = map[string]uint64{"node_id": last.ID}
		l.HumanTime = last.Received.UTC().Format(time.RFC3339Nano)
		l.Lease.TimestampMillis = last.Received.UnixMilli()
		l.Lease.NodeAddr = last.Addr
		out = append(out, l)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type heartbeatStat struct {
	TimestampMillis int64                 `json:"timestamp_millis"`
	ID              uint64                `json:"id"`
	Addr            string                `json:"addr"`
	RegionNum       int                   `json:"region_num"`
	RegionStats     []failover.RegionStat `json:"region_stats"`
	NodeEpoch       int64                 `json:"node_epoch"`
}

func parseHeartbeatQuery(r *http.Request, _ []byte) (any, error) {
	addr := r.URL.Query().Get("addr")
	if addr != "" {
		if err := checkHostPort(addr); err != nil {
			return nil, badRequest("addr %q: %v", addr, err)
		}
	}
	return addr, nil
}

func (n *Node) runHeartbeatStats(_ context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	addr := in.(string)
	t, err := n.currentTerm()
	if err != nil {
		return err
	}
	out := [][]heartbeatStat{}
	for _, hbs := range t.mon.History() {
		if addr != "" && hbs[len(hbs)-1].Addr != addr {
			continue
		}
		stats := make([]heartbeatStat, 0, len(hbs))
		for _, hb := range hbs {
			rs := hb.RegionStats
			if rs == nil {
				rs = []failover.RegionStat{}
			}
			stats = append(stats, heartbeatStat{TimestampMillis: hb.Received.UnixMilli(), ID: hb.ID, Addr: hb.Addr,
				RegionNum: len(hb.Regions), RegionStats: rs, NodeEpoch: hb.StartTimeMs})
		}
		sort.SliceStable(stats, func(i, j int) bool { return stats[i].TimestampMillis < stats[j].TimestampMillis })
		out = append(out, stats)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func noInput(*http.Request, []byte) (any, error) { return nil, nil }
