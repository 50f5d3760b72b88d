package fsm

import (
	"encoding/json"
	"fmt"
)

// Command types. Each is registered once, in init below, with its envelope
// version, protocol level and handler; a type or version missing from the
// registry stops the apply loop loudly (Config.OnUnknown).
const (
	CmdInitCluster       = "InitCluster"
	CmdSetMaintenance    = "SetMaintenance"
	CmdExpireMaintenance = "ExpireMaintenance"
	CmdSetMember         = "SetMember"
	CmdRemoveMember      = "RemoveMember"
	CmdRegisterDatanode  = "RegisterDatanode"
	CmdRemoveDatanode    = "RemoveDatanode"
	CmdCreateTable       = "CreateTable"
	CmdDropTable         = "DropTable"
	CmdMoveRegions       = "MoveRegions"
	CmdSetAdminState     = "SetDatanodeAdminState"
	CmdSetProcedures     = "SetProcedures"
	CmdRecordWatchEvent  = "RecordWatchEvent"
)

// Protocol is the command protocol this binary speaks. A command type is
// introduced at some protocol level; the leader proposes it only once every
// member speaks that level, so a rolling upgrade never feeds an old binary
// a command it does not know (which would stop it, by design).
// Protocol 2 adds no command: it says the member reads snapshot format 2
// (CompactSnapshotProtocol). Protocol 3 adds SetProcedures (the procedure
// pause). Protocol 4 adds no command: writes carry the authenticated
// Identity beside By, and a datanode may register cordoned
// (IdentityProtocol). Protocol 5 adds RecordWatchEvent (leader elected,
// datanode suspect, failed, recovered; WatchProtocol).
const Protocol = 5

// IdentityProtocol is the level at which commands carry Identity: a
// leader sets it only once every member records this level, so no replica
// applies a write without the field another applied with it.
const IdentityProtocol = 4

// WatchProtocol is the level of RecordWatchEvent.
const WatchProtocol = 5

// The registry: one line per command type, register(type, version,
// protocol, handler). version is the highest envelope version this binary
// understands (and the one Encode writes); protocol is the level at which
// the type was introduced. Both are part of the raft log format: never
// lower a version or change a protocol level.
func init() {
	register(CmdInitCluster, 1, 1, (*FSM).applyInitCluster)
	register(CmdSetMaintenance, 1, 1, (*FSM).applySetMaintenance)
	register(CmdExpireMaintenance, 1, 1, (*FSM).applyExpireMaintenance)
	register(CmdSetMember, 1, 1, (*FSM).applySetMember)
	register(CmdRemoveMember, 1, 1, (*FSM).applyRemoveMember)
	register(CmdRegisterDatanode, 1, 1, (*FSM).applyRegisterDatanode)
	register(CmdRemoveDatanode, 1, 1, (*FSM).applyRemoveDatanode)
	register(CmdCreateTable, 1, 1, (*FSM).applyCreateTable)
	register(CmdDropTable, 1, 1, (*FSM).applyDropTable)
	register(CmdMoveRegions, 1, 1, (*FSM).applyMoveRegions)
	register(CmdSetAdminState, 1, 1, (*FSM).applySetAdminState)
	register(CmdSetProcedures, 1, 3, (*FSM).applySetProcedures)
	register(CmdRecordWatchEvent, 1, WatchProtocol, (*FSM).applyRecordWatchEvent)
}

// commandSpec is one registered command type.
type commandSpec struct {
	version, protocol int
	// apply decodes the payload and applies it, with f.mu held.
	apply func(f *FSM, index uint64, payload json.RawMessage) Result
}

// commands is written only by init (register) and read-only afterwards.
var commands = map[string]commandSpec{}

// register adds command type name, whose payload is a T, to the registry.
// A payload that does not decode into a T is rejected as invalid.
func register[T any](name string, version, protocol int, apply func(f *FSM, index uint64, c T) Result) {
	if _, dup := commands[name]; dup {
		panic(fmt.Sprintf("fsm: command %q registered twice", name))
	}
	if version < 1 || protocol < 1 || protocol > Protocol {
		panic(fmt.Sprintf("fsm: command %q: bad version %d or protocol %d (binary speaks %d)", name, version, protocol, Protocol))
	}
	commands[name] = commandSpec{version: version, protocol: protocol,
		apply: func(f *FSM, index uint64, payload json.RawMessage) Result {
			var c T
			if err := json.Unmarshal(payload, &c); err != nil {
				return invalid(err)
			}
			return apply(f, index, c)
		}}
}

// ProtocolOf is the protocol level a member needs to apply typ (0 if this
// binary does not know typ).
func ProtocolOf(typ string) int { return commands[typ].protocol }

// Known reports whether this binary can apply the command type at version v.
func Known(typ string, v int) bool {
	spec, ok := commands[typ]
	return ok && v >= 1 && v <= spec.version
}
