package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// probe reports whether the member API at addr answers /admin/health
// within 500 ms.
func (s *Server) probe(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	status, _, err := s.call(ctx, http.MethodGet, s.url(addr, "/admin/health"), nil)
	return err == nil && status == http.StatusOK
}

// noLeaderErr is 503 no_leader saying how many voters this node reaches
// now and which it cannot, so an operator can tell a lost quorum from a
// slow election.
func (s *Server) noLeaderErr(ctx context.Context, what string) error {
	servers, err := s.node.Servers()
	if err != nil || len(servers) == 0 {
		return errorf(http.StatusServiceUnavailable, wire.CodeNoLeader, "%s; this node knows no cluster configuration yet", what)
	}
	var mu sync.Mutex
	var reached, missing []string
	var wg sync.WaitGroup
	voters := 0
	for _, sv := range servers {
		if !sv.Voter {
			continue
		}
		voters++
		if sv.ID == s.cfg.NodeID {
			reached = append(reached, sv.ID)
			continue
		}
		addr := s.node.DirectoryRPCAddr(sv.ID)
		if m, ok := s.fsm.Member(sv.ID); ok && m.RPCAddr != "" {
			addr = m.RPCAddr
		}
		wg.Add(1)
		go func(id, addr string) {
			defer wg.Done()
			ok := addr != "" && s.probe(ctx, addr)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				reached = append(reached, id)
			} else {
				missing = append(missing, id)
			}
		}(sv.ID, addr)
	}
	wg.Wait()
	sort.Strings(reached)
	sort.Strings(missing)
	msg := fmt.Sprintf("%s; this node reaches %d of %d voters (%s), a quorum needs %d", what,
		len(reached), voters, strings.Join(reached, ", "), voters/2+1)
	if len(missing) > 0 {
		msg += "; unreachable: " + strings.Join(missing, ", ")
	}
	return errorf(http.StatusServiceUnavailable, wire.CodeNoLeader, "%s", msg)
}

// removedErr is 410 removed: this node's own configuration no longer lists
// it, so it will never again have a leader.
func (s *Server) removedErr() error {
	return errorf(http.StatusGone, "removed",
		"node %s was removed from the cluster (its latest raft configuration lacks it): stop it, wipe its data dir and start it with --join to bring it back", s.cfg.NodeID)
}
