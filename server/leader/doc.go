// Package leader is one leadership term's work: the heartbeat intake with
// its leases, the failover monitor and runner, the balancer runner,
// maintenance expiry and region placement. Followers hold no term.
//
// It may import server/raftnode, failover, balancer, fsm, server/wire,
// hclog and prometheus; never net/http or server/httpapi.
package leader
