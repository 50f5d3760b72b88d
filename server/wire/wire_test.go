package wire

import "testing"

func TestParseErrorLeaderHintRetryable(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		want      Error
		hint      string
		retryable bool
	}{
		{"not leader with hint", `{"error":"not me","code":"not_leader","leader_id":"n2","leader_rpc_addr":"127.0.0.1:3102"}`,
			Error{Error: "not me", Code: CodeNotLeader, LeaderID: "n2", LeaderRPCAddr: "127.0.0.1:3102"}, "127.0.0.1:3102", true},
		{"no leader", `{"error":"none","code":"no_leader"}`, Error{Error: "none", Code: CodeNoLeader}, "", true},
		{"timeout", `{"error":"slow","code":"timeout"}`, Error{Error: "slow", Code: CodeTimeout}, "", false},
		{"outcome unknown", `{"error":"?","code":"outcome_unknown"}`, Error{Error: "?", Code: CodeOutcomeUnknown}, "", false},
		{"other code", `{"error":"bad","code":"bad_request"}`, Error{Error: "bad", Code: "bad_request"}, "", false},
		{"unknown fields ignored", `{"code":"not_leader","extra":1}`, Error{Code: CodeNotLeader}, "", true},
		{"not json", `not json`, Error{}, "", false},
		{"empty", ``, Error{}, "", false},
		{"json array", `[1,2]`, Error{}, "", false},
		{"wrong type", `{"code":5}`, Error{}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseError([]byte(tc.body)); got != tc.want {
				t.Errorf("ParseError(%s) = %+v, want %+v", tc.body, got, tc.want)
			}
			if got := LeaderHint([]byte(tc.body)); got != tc.hint {
				t.Errorf("LeaderHint(%s) = %q, want %q", tc.body, got, tc.hint)
			}
			if got := Retryable([]byte(tc.body)); got != tc.retryable {
				t.Errorf("Retryable(%s) = %t, want %t", tc.body, got, tc.retryable)
			}
		})
	}
}

func TestCheckHostPort(t *testing.T) {
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:3002", true},
		{"localhost:80", true},
		{"metasrv-0.metasrv.svc:3003", true},
		{"[::1]:3002", true},
		{"[2001:db8::1]:0", true},
		{"0.0.0.0:3002", true},
		{"host:name", true}, // a named port is still HOST:PORT
		{"", false},
		{"127.0.0.1", false},
		{":3002", false},
		{"127.0.0.1:", false},
		{"::1:3002", false},
		{"a b:3002", false},
		{"a/b:3002", false},
		{"http://x:1", false},
		{"[::1]", false},
	}
	for _, tc := range cases {
		err := CheckHostPort(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckHostPort(%q) = %v, want ok=%t", tc.addr, err, tc.ok)
		}
	}
}
