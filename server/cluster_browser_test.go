package server

import (
	"net/http"
	"testing"
)

// Browsers cannot drive the API: a page on another origin may send a
// text/plain POST or the legacy GET setter without a preflight, so such
// requests are refused on the node that receives them, before forwarding.
func TestBrowsersCannotChangeState(t *testing.T) {
	c := startCluster(t, 3, nil)
	f := c.follower()
	host := f.node.Addr()
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		want                     int
	}{
		{"cross-origin text/plain POST", http.MethodPost, "/admin/maintenance?enable=true", "x",
			[]string{"Origin", "http://evil.example", "Content-Type", "text/plain"}, http.StatusForbidden},
		{"cross-origin bodiless POST", http.MethodPost, "/admin/maintenance/enable", "",
			[]string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"Origin null", http.MethodPost, "/admin/maintenance?enable=true", "", []string{"Origin", "null"}, http.StatusForbidden},
		{"cross-origin legacy GET setter", http.MethodGet, "/admin/maintenance?enable=true", "",
			[]string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"same host, other port", http.MethodPost, "/admin/maintenance?enable=true", "",
			[]string{"Origin", "http://127.0.0.1:1"}, http.StatusForbidden},
		{"cross-origin heartbeat", http.MethodPost, "/v1/heartbeat", `{"id":1,"addr":"127.0.0.1:1","start_time_ms":1,"seq":1}`,
			[]string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"text/plain body without Origin", http.MethodPost, "/admin/tables", `{"name":"t","regions":1}`,
			[]string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{"form body", http.MethodPost, "/admin/maintenance?enable=true", "enable=true",
			[]string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			if r := c.do(f, tc.method, tc.path, body, tc.hdr...); r.status != tc.want {
				t.Fatalf("%s", r)
			}
		})
	}
	if f.node.FSM().Maintenance().Enabled || len(c.regDatanodes(c.leader())) != 0 {
		t.Fatal("a refused request changed the state")
	}
	// Reads from any origin, the node's own origin, and no Origin at all
	// are fine; so is the seed's bodiless POST.
	for _, hdr := range [][]string{nil, {"Origin", "http://" + host}} {
		if r := c.do(f, http.MethodPost, "/admin/maintenance?enable=true", nil, hdr...); r.status != http.StatusOK {
			t.Fatalf("POST with %v: %s", hdr, r)
		}
	}
	if r := c.do(f, http.MethodGet, "/admin/maintenance", nil, "Origin", "http://evil.example"); r.status != http.StatusOK {
		t.Fatalf("a cross-origin read: %s", r)
	}
}

// The Authorization scheme is case-insensitive.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	const token = "a-token-of-at-least-32-bytes-0123456789"
	c := startCluster(t, 1, func(cfg *Config) { cfg.AdminToken = token })
	n := c.nodes[0]
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		if r := c.do(n, http.MethodPost, "/admin/maintenance?enable=true", nil, "Authorization", scheme+" "+token); r.status != http.StatusOK {
			t.Fatalf("%s: %s", scheme, r)
		}
	}
	if r := c.do(n, http.MethodPost, "/admin/maintenance?enable=true", nil, "Authorization", "Basic "+token); r.status != http.StatusUnauthorized {
		t.Fatalf("Basic: %s", r)
	}
}
