package wire

// Preflight is the answer of GET /admin/maintenance/preflight: whether
// turning maintenance off now would be uneventful. Ready is true when every
// check passed; WouldMove is how many regions failover would move the
// moment maintenance turns off (those owned by datanodes failed now), and
// MoveFrom says which datanodes they sit on.
type Preflight struct {
	Ready     bool             `json:"ready"`
	Checks    []PreflightCheck `json:"checks"`
	WouldMove int              `json:"would_move"`
	MoveFrom  []PreflightMove  `json:"move_from"`
}

// PreflightCheck is one check of a preflight; Detail says what it found.
type PreflightCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// PreflightMove is a failed datanode and how many regions it owns.
type PreflightMove struct {
	Datanode uint64 `json:"datanode"`
	Addr     string `json:"addr"`
	Regions  int    `json:"regions"`
}

// Names of the preflight checks.
const (
	CheckVoters    = "voters_caught_up"
	CheckDatanodes = "datanodes_alive"
	CheckRegions   = "regions_served"
)

// CodePreflightFailed answers a maintenance disable with require_ready=true
// whose preflight failed: 409, nothing changed, the failed checks in
// "checks".
const CodePreflightFailed = "preflight_failed"
