package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// requestTimeout bounds one request to one endpoint: above the server's
// own bound on a forwarded write (leader wait plus apply timeout).
const requestTimeout = 20 * time.Second

// maxAnswer bounds a body read from the API.
const maxAnswer = 16 << 20

// client talks to the first endpoint that accepts a connection.
type client struct {
	endpoints []string // host:port
	scheme    string
	token     string
	http      *http.Client
	// addr is the endpoint that answered last.
	addr string
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Code   string
	Msg    string
	Body   []byte
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%d %s", e.Status, e.Msg)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Msg)
}

type clientOptions struct {
	endpoints         string
	tokenFile         string
	caCert, cert, key string
	timeout           time.Duration
}

func newClient(o clientOptions) (*client, error) {
	c := &client{scheme: "http"}
	for _, e := range strings.Split(o.endpoints, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if strings.Contains(e, "://") {
			u, err := url.Parse(e)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return nil, usagef("endpoint %q: want host:port (or http(s)://host:port)", e)
			}
			if u.Scheme == "https" {
				c.scheme = "https"
			}
			e = u.Host
		}
		if _, port, err := net.SplitHostPort(e); err != nil || port == "" {
			return nil, usagef("endpoint %q: want host:port", e)
		}
		c.endpoints = append(c.endpoints, e)
	}
	if len(c.endpoints) == 0 {
		return nil, usagef("no endpoints: give --endpoints host:port[,host:port...] or METACTL_ENDPOINTS")
	}
	if o.tokenFile != "" {
		tok, err := readToken(o.tokenFile)
		if err != nil {
			return nil, err
		}
		c.token = tok
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.caCert != "" || o.cert != "" || o.key != "" {
		cfg, err := tlsConfig(o.caCert, o.cert, o.key)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
		c.scheme = "https"
	}
	timeout := o.timeout
	if timeout <= 0 {
		timeout = requestTimeout
	}
	c.http = &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// readToken reads a token file: the secret alone on a line.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	tok := strings.TrimSpace(lines[0])
	switch {
	case len(lines) > 1:
		return "", fmt.Errorf("token file %s: want the secret alone on one line, found %d lines", path, len(lines))
	case tok == "":
		return "", fmt.Errorf("token file %s is empty", path)
	case strings.ContainsAny(tok, " \t:"):
		return "", fmt.Errorf("token file %s: want the secret alone (no NAME: prefix, no spaces)", path)
	}
	return tok, nil
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, usagef("--cert and --key go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// do sends one request, trying the endpoints in turn while a connection
// cannot be made (a write whose connection broke after it was sent is not
// retried elsewhere: it may have been applied). An error answer (4xx, 5xx)
// is an *apiError.
func (c *client) do(ctx context.Context, method, path string, query url.Values) ([]byte, error) {
	return c.send(ctx, method, path, query, nil)
}

// send is do with a JSON body (nil for none).
func (c *client) send(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	var lastErr error
	for _, ep := range c.endpoints {
		u := c.scheme + "://" + ep + path
		if len(query) > 0 {
			u += "?" + query.Encode()
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s %s: %v", method, path, ctx.Err())
			}
			lastErr = fmt.Errorf("%s: %v", ep, unwrapURL(err))
			if method == http.MethodGet || isDialError(err) {
				continue
			}
			return nil, fmt.Errorf("%s %s: %v (the outcome is unknown: check the state before retrying)", method, path, lastErr)
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s %s on %s: reading the answer: %v", method, path, ep, err)
		}
		c.addr = ep
		if resp.StatusCode >= 300 {
			e := &apiError{Status: resp.StatusCode, Body: answer}
			var eb struct {
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			if json.Unmarshal(answer, &eb) == nil && (eb.Error != "" || eb.Code != "") {
				e.Code, e.Msg = eb.Code, eb.Error
			} else {
				e.Msg = strings.TrimSpace(string(bytes.ToValidUTF8(answer, nil)))
				if e.Msg == "" {
					e.Msg = http.StatusText(resp.StatusCode)
				}
			}
			e.Msg = oneLine(e.Msg)
			return answer, e
		}
		return answer, nil
	}
	return nil, fmt.Errorf("no endpoint reachable (%s): %v", strings.Join(c.endpoints, ","), lastErr)
}

// getJSON is a GET decoded into v; it returns the raw body too.
func (c *client) getJSON(ctx context.Context, path string, query url.Values, v any) ([]byte, error) {
	body, err := c.do(ctx, http.MethodGet, path, query)
	if err != nil {
		return body, err
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return body, fmt.Errorf("GET %s: the answer is not what metactl expects: %v", path, err)
		}
	}
	return body, nil
}

// getFrom is a GET to one given address (a member), not the endpoints.
func (c *client) getFrom(ctx context.Context, addr, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+"://"+addr+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return unwrapURL(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("status %d: %v", resp.StatusCode, err)
	}
	return nil
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
