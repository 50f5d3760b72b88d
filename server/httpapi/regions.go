package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
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

func (s *Server) runCreateTable(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	req := in.(createTableRequest)
	routes, err := s.lead.CreateTable(ctx, req.Name, *req.Regions, s.actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "regions": routes})
	return nil
}

func (s *Server) runListTables(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	writeJSON(w, http.StatusOK, s.fsm.Tables())
	return nil
}

func parseTableName(r *http.Request, _ []byte) (any, error) {
	name := mux.Vars(r)["name"]
	if !tableNameRE.MatchString(name) {
		return nil, badRequest("table name %q is not valid", name)
	}
	return name, nil
}

func (s *Server) runDropTable(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	name := in.(string)
	a := s.actor(r)
	_, err := s.node.Commit(ctx, fsm.CmdDropTable, fsm.DropTable{Name: name, By: a.By, Identity: a.Identity, Time: s.cfg.Now().UTC()})
	if err != nil {
		return err
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

func (s *Server) runListRegions(_ context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	rq := in.(regionsQuery)
	var regions []fsm.Region
	for _, r := range s.fsm.Regions() {
		if (rq.table == "" || r.Table == rq.table) && (rq.datanode == 0 || r.Datanode == rq.datanode) {
			regions = append(regions, r)
		}
	}
	writeJSON(w, http.StatusOK, s.lead.Routes(regions))
	return nil
}

func (s *Server) runListDatanodes(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	writeJSON(w, http.StatusOK, s.lead.Datanodes())
	return nil
}

func parseDatanodeID(r *http.Request, _ []byte) (any, error) {
	return parseID(mux.Vars(r)["id"], "datanode")
}

func (s *Server) runRemoveDatanode(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	id := in.(uint64)
	if err := s.lead.RemoveDatanode(ctx, id, s.actor(r)); err != nil {
		return err
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
func (s *Server) runMigrate(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	mr := in.(migrateRequest)
	route, err := s.lead.Migrate(ctx, mr.region, mr.to, mr.from, s.actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, route)
	return nil
}

// GreptimeDB-compatible views for its scripts.

func (s *Server) runNodeLease(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	out, err := s.lead.NodeLeases()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func parseHeartbeatQuery(r *http.Request, _ []byte) (any, error) {
	addr := r.URL.Query().Get("addr")
	if addr != "" {
		if err := wire.CheckHostPort(addr); err != nil {
			return nil, badRequest("addr %q: %v", addr, err)
		}
	}
	return addr, nil
}

func (s *Server) runHeartbeatStats(_ context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	out, err := s.lead.HeartbeatStats(in.(string))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func noInput(*http.Request, []byte) (any, error) { return nil, nil }
