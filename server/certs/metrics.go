package certs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var expiryDesc = prometheus.NewDesc("metasrv_tls_cert_expiry_seconds",
	"Seconds until a certificate this process uses (its own or a CA it trusts) expires; negative once expired.",
	[]string{"use", "subject", "file", "ca", "serial"}, nil)

// ExpiryCollector exports metasrv_tls_cert_expiry_seconds for each
// certificate of each source, read at scrape time so reloads show at once.
// The serial label keeps apart two CAs of one name in one bundle (the old
// and the new CA during a rotation).
type ExpiryCollector struct {
	Sources map[string]*Source // by use: "peer", "server", ...
	Now     func() time.Time
}

func (c ExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c ExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	for use, s := range c.Sources {
		if s == nil {
			continue
		}
		for _, e := range s.Expiry() {
			ca := "false"
			if e.CA {
				ca = "true"
			}
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue,
				e.NotAfter.Sub(now()).Seconds(), use, e.Subject, e.File, ca, e.Serial)
		}
	}
}
