package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/leader"
	"github.com/metasrv/metasrv/server/wire"
)

// incarnationProber asks a datanode's own address which incarnation serves
// there (GET /incarnation), for the leader to check a fleet credential's
// claim. With TLS configured it tries HTTPS first and believes only a
// certificate of role metasrv-datanode named datanode-<id>; a datanode
// that serves plain HTTP is asked in plain HTTP.
func incarnationProber(src *certs.Source) leader.ConfirmFunc {
	return func(ctx context.Context, id uint64, addr string) (wire.Incarnation, error) {
		if src != nil {
			inc, err := askIncarnation(ctx, "https://", addr, datanodeTransport(src, id))
			var rec tls.RecordHeaderError
			if !errors.As(err, &rec) {
				return inc, err
			}
		}
		return askIncarnation(ctx, "http://", addr, &http.Transport{DisableKeepAlives: true})
	}
}

func datanodeTransport(src *certs.Source, id uint64) *http.Transport {
	want := certs.DatanodeName(id)
	accept := func(got certs.Identity) error {
		if got.Role != certs.RoleDatanode || got.Name != want {
			return fmt.Errorf("want %s %s", certs.RoleDatanode, want)
		}
		return nil
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Transport{DialTLSContext: src.DialTLS(d, tls.VersionTLS12, accept), DisableKeepAlives: true}
}

func askIncarnation(ctx context.Context, scheme, addr string, tr *http.Transport) (wire.Incarnation, error) {
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+addr+"/incarnation", nil)
	if err != nil {
		return wire.Incarnation{}, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return wire.Incarnation{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return wire.Incarnation{}, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return wire.Incarnation{}, errors.New("it has no GET /incarnation (a datanode older than this metasrv): upgrade it, or give it its own credential")
	case resp.StatusCode != http.StatusOK:
		return wire.Incarnation{}, fmt.Errorf("GET /incarnation answered %s", resp.Status)
	}
	var inc wire.Incarnation
	if err := json.Unmarshal(body, &inc); err != nil {
		return wire.Incarnation{}, fmt.Errorf("GET /incarnation: %w", err)
	}
	return inc, nil
}
