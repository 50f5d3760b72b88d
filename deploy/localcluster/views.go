package localcluster

import "github.com/metasrv/metasrv/server/wire"

// Views of metasrv API answers that the end-to-end tests read, as the API
// declares them (package server/wire).

// Event is one entry of GET /admin/events.
type Event = wire.Event

// Route is one entry of GET /admin/regions: a region and its owner.
type Route = wire.Route

// RaftStatus is the answer of GET /admin/raft.
type RaftStatus = wire.RaftStatus
