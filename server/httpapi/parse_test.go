package httpapi

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

func TestParseMaintenanceSet(t *testing.T) {
	s := &Server{}
	cases := []struct {
		query   string
		fixed   *bool
		wantErr bool
		check   func(c fsm.SetMaintenance) bool
	}{
		{"enable=true", nil, false, func(c fsm.SetMaintenance) bool { return c.Enabled }},
		{"enable=false", nil, false, func(c fsm.SetMaintenance) bool { return !c.Enabled }},
		{"enable=foo", nil, true, nil},
		{"enable=", nil, true, nil},
		{"enable=1", nil, true, nil},
		{"enable=TRUE", nil, true, nil},
		{"", nil, true, nil},
		{"", ptr(true), false, func(c fsm.SetMaintenance) bool { return c.Enabled }},
		{"enable=true&ttl=2h&reason=upgrade&by=ops", nil, false, func(c fsm.SetMaintenance) bool {
			return c.TTL == 2*time.Hour && c.Reason == "upgrade" && c.By == "ops"
		}},
		{"enable=true&ttl=banana", nil, true, nil},
		{"enable=true&ttl=-1s", nil, true, nil},
		{"enable=true&ttl=0s", nil, true, nil},
		{"enable=false&ttl=1h", nil, true, nil},
		{"enable=true&if_epoch=7", nil, false, func(c fsm.SetMaintenance) bool { return c.IfEpoch != nil && *c.IfEpoch == 7 }},
		{"enable=true&if_epoch=-1", nil, true, nil},
		{"enable=true&by=", nil, true, nil},
		{"enable=true&unknown=1", nil, false, func(c fsm.SetMaintenance) bool { return c.Enabled }},
		{"enable=true", nil, false, func(c fsm.SetMaintenance) bool { return c.By == "192.0.2.1" }},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, "/admin/maintenance?"+tc.query, nil)
		in, err := s.parseMaintenanceSet(tc.fixed)(r, nil)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error = %v, want error %t", tc.query, err, tc.wantErr)
			continue
		}
		if err == nil && tc.check != nil && !tc.check(in.(fsm.SetMaintenance)) {
			t.Errorf("%q: parsed %+v", tc.query, in)
		}
	}
}

func TestStaleParamAndRetryableCode(t *testing.T) {
	for q, want := range map[string]bool{"": false, "stale": true, "stale=true": true, "stale=false": false} {
		got, err := staleParam(httptest.NewRequest(http.MethodGet, "/x?"+q, nil))
		if err != nil || got != want {
			t.Errorf("staleParam(%q) = %t, %v; want %t", q, got, err, want)
		}
	}
	if _, err := staleParam(httptest.NewRequest(http.MethodGet, "/x?stale=yes", nil)); err == nil {
		t.Errorf("staleParam(stale=yes) accepted")
	}
	for body, want := range map[string]bool{
		`{"code":"not_leader"}`: true, `{"code":"no_leader"}`: true,
		`{"code":"outcome_unknown"}`: false, `{"code":"timeout"}`: false, `not json`: false,
	} {
		if got := wire.Retryable([]byte(body)); got != want {
			t.Errorf("wire.Retryable(%s) = %t, want %t", body, got, want)
		}
	}
}

func TestClientAddrHonoursOnlyForwardsFromMembers(t *testing.T) {
	member := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{Organization: []string{"metasrv-node"}, CommonName: "n2"}}}}
	operator := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{Organization: []string{"metasrv-client"}, CommonName: "alice"}}}}
	for _, tc := range []struct {
		name      string
		forwarded bool
		cs        *tls.ConnectionState
		want      string
	}{
		{"direct", false, nil, "10.0.0.5"},
		{"forwarded header over plain HTTP", true, nil, "10.0.0.5"},
		{"forwarded by an operator's certificate", true, operator, "10.0.0.5"},
		{"forwarded by a member's certificate", true, member, "1.2.3.4"},
		{"a member's certificate without the forwarded header", false, member, "10.0.0.5"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = "10.0.0.5:5555"
		r.Header.Set(hdrClientAddr, "1.2.3.4")
		if tc.forwarded {
			r.Header.Set(hdrForwardedBy, "n2")
		}
		r.TLS = tc.cs
		if got := clientAddr(r); got != tc.want {
			t.Errorf("%s: client addr %s, want %s", tc.name, got, tc.want)
		}
	}
}
