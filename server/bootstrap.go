package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/fsm"
)

// bootstrap founds the cluster from --peers when, and only when, this is a
// new member with an empty data dir (etcd's rules). A node whose disk was
// lost must be started with --initial-cluster-state existing (or --join)
// so it waits to be re-added instead of founding a second cluster.
func (n *Node) bootstrap(hasState bool) error {
	c := n.cfg
	switch {
	case hasState:
		n.log.Info("found raft state in data dir; rejoining with it", "data_dir", c.DataDir)
		return nil
	case len(c.Join) > 0:
		n.needJoin.Store(true)
		n.log.Info("no raft state; will ask to join", "via", c.Join)
		return nil
	case c.InitialClusterState == ClusterStateExisting:
		n.log.Info("no raft state and --initial-cluster-state existing: waiting to be added by the leader")
		return nil
	}
	peers := c.Peers
	if len(peers) == 0 {
		peers = []Peer{{ID: c.NodeID, RaftAddr: c.AdvertiseRaftAddr}}
	}
	var conf raft.Configuration
	for _, p := range peers {
		if p.ID == c.NodeID && p.RaftAddr != c.AdvertiseRaftAddr {
			return fmt.Errorf("--peers gives %s=%s but this node advertises raft address %s", p.ID, p.RaftAddr, c.AdvertiseRaftAddr)
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	if c.BootstrapWait > 0 {
		// An existing cluster that still lists this node sends it heartbeats:
		// seeing a leader means this node merely lost its disk and must not
		// found a cluster of its own.
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.log.Info("empty data dir: waiting for an existing leader before bootstrapping", "wait", c.BootstrapWait)
			deadline := time.Now().Add(c.BootstrapWait)
			for time.Now().Before(deadline) {
				if n.knowsLeader() {
					n.log.Info("found an existing cluster; not bootstrapping")
					return
				}
				if !sleepCtx(n.ctx, 50*time.Millisecond) {
					return
				}
			}
			if err := n.bootstrapWith(conf); err != nil {
				n.fatal(err)
			}
		}()
		return nil
	}
	return n.bootstrapWith(conf)
}

func (n *Node) bootstrapWith(conf raft.Configuration) error {
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	n.log.Info("bootstrapped a new cluster", "peers", len(conf.Servers))
	return nil
}

// joinRequest is the body of POST /admin/cluster/join and of
// PUT /admin/cluster/members/{id}.
type joinRequest struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	RPCAddr   string `json:"rpc_addr"`
	Version   string `json:"version,omitempty"`
	Protocol  int    `json:"protocol,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
}

type joinResponse struct {
	ClusterID string       `json:"cluster_id"`
	LeaderID  string       `json:"leader_id"`
	Members   []fsm.Member `json:"members"`
}

// registerLoop joins the cluster through --join when this node is new, and
// afterwards keeps this node's own entry in the replicated directory
// (addresses, version) current, so every node can be found and forwarded to.
func (n *Node) registerLoop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var err error
		ch := n.fsm.Changed()
		if n.needJoin.Load() {
			if err = n.joinOnce(); err != nil {
				n.log.Warn("join failed; retrying", "error", err)
			} else {
				n.needJoin.Store(false)
			}
		} else if m, ok := n.fsm.Member(n.cfg.NodeID); n.knowsLeader() && (!ok || m.RPCAddr != n.cfg.AdvertiseRPCAddr ||
			m.RaftAddr != n.cfg.AdvertiseRaftAddr || m.Version != n.cfg.Version || m.Protocol != fsm.Protocol) && n.raft.State() != raft.Leader {
			if err = n.registerSelf(); err != nil {
				n.log.Debug("registering own address failed; retrying", "error", err)
			}
		}
		if err != nil {
			ch = nil // after a failure, retry on the tick only
		}
		select {
		case <-n.ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

func (n *Node) knowsLeader() bool {
	_, id := n.raft.LeaderWithID()
	return id != ""
}

func (n *Node) selfJoinRequest() joinRequest {
	return joinRequest{ID: n.cfg.NodeID, RaftAddr: n.cfg.AdvertiseRaftAddr, RPCAddr: n.cfg.AdvertiseRPCAddr,
		Version: n.cfg.Version, Protocol: fsm.Protocol, ClusterID: n.dir.clusterID()}
}

func (n *Node) joinOnce() error {
	body, _ := json.Marshal(n.selfJoinRequest())
	var errs []error
	for _, addr := range n.cfg.Join {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaderWait+n.cfg.ApplyTimeout)
		status, respBody, err := n.call(ctx, http.MethodPost, "http://"+addr+"/admin/cluster/join", body)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		if status != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: %d %s", addr, status, bytes.TrimSpace(respBody)))
			if status == http.StatusConflict {
				n.fatal(fmt.Errorf("join refused by %s: %s", addr, bytes.TrimSpace(respBody)))
			}
			continue
		}
		var jr joinResponse
		if err := json.Unmarshal(respBody, &jr); err != nil {
			errs = append(errs, fmt.Errorf("%s: bad answer: %w", addr, err))
			continue
		}
		if err := n.dir.update(jr.ClusterID, append(jr.Members, n.selfMember())); err != nil {
			n.log.Warn("cannot persist member directory", "error", err)
		}
		n.log.Info("joined the cluster", "via", addr, "cluster_id", jr.ClusterID, "leader", jr.LeaderID)
		return nil
	}
	return errors.Join(errs...)
}

func (n *Node) registerSelf() error {
	req := n.selfJoinRequest()
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaderWait+n.cfg.ApplyTimeout)
	defer cancel()
	status, respBody := n.selfRequest(ctx, http.MethodPut, "/admin/cluster/members/"+req.ID, body)
	if status != http.StatusOK {
		return fmt.Errorf("%d %s", status, bytes.TrimSpace(respBody))
	}
	return nil
}

// selfRequest runs a request through this node's own API handler, which
// forwards it to the leader like any client request.
func (n *Node) selfRequest(ctx context.Context, method, path string, body []byte) (int, []byte) {
	req := httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	req.RemoteAddr = n.cfg.AdvertiseRPCAddr
	req.Header.Set("Content-Type", "application/json")
	if n.cfg.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.AdminToken)
	}
	rec := httptest.NewRecorder()
	n.httpSrv.Handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// call sends one request to another node with this node's credentials.
func (n *Node) call(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if n.cfg.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.AdminToken)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, b, err
}
