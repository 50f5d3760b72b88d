// Package health turns what the leader sees (raft, maintenance, datanodes,
// regions, failover, balancer, certificates) into the health report of
// GET /admin/health/report: each indicator green, yellow or red, with its
// symptom, figures, impacts and the actions to take. It is pure: the
// caller gathers Inputs, clocks included.
//
// It may import server/wire only.
package health
