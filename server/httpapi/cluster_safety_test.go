package httpapi

import (
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
)

// A joining node gives up (exits 70) only on a refusal for good; it keeps
// retrying one that can pass later.
func TestTransientJoinRefusal(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"code":"join_unreachable","error":"x"}`, true},
		{`{"code":"quorum_at_risk","error":"x"}`, true},
		{`{"code":"conflict","error":"x"}`, false},
		{`{"code":"cluster_id_mismatch","error":"x"}`, false},
		{`{"code":"protocol_too_old","error":"x"}`, false},
		{`not json`, false},
		{``, false},
	} {
		if got := transientJoinRefusal([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: transient %t, want %t", tc.body, got, tc.want)
		}
	}
}

func TestParseForce(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    bool
		wantErr bool
	}{
		{"", false, false},
		{"?force=true", true, false},
		{"?force", true, false},
		{"?force=false", false, false},
		{"?force=1", false, true},
		{"?force=yes", false, true},
	} {
		r := mux.SetURLVars(httptest.NewRequest("DELETE", "/admin/cluster/members/n2"+tc.query, nil), map[string]string{"id": "n2"})
		in, err := parseMemberID(r, nil)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%q: error %v, want error %t", tc.query, err, tc.wantErr)
		}
		if err == nil && (in.(removeInput).force != tc.want || in.(removeInput).id != "n2") {
			t.Fatalf("%q: %+v, want force %t", tc.query, in, tc.want)
		}
	}
}
