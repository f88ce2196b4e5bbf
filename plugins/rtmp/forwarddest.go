package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// forwardVars are the variables a forward destination URL may hold, as
// SRS #1342: each is replaced by the published stream's value.
var forwardVars = []string{"[vhost]", "[app]", "[stream]", "[param]"}

// checkDestination accepts a forward destination: host:port (the stream
// goes to the same app and stream there) or an rtmp:// URL, whose
// variables are checked by expanding them with sample values.
func checkDestination(d string) error {
	if !strings.Contains(d, "://") {
		if _, _, err := net.SplitHostPort(d); err != nil {
			return fmt.Errorf("%q is neither host:port nor an rtmp:// URL", d)
		}
		return nil
	}
	_, err := destinationURL(d, sdk.StreamRef{Vhost: "v.example.com", App: "app", Stream: "stream", Param: "?k=v"})
	return err
}

// destinationURL is the rtmp:// URL a publication of ref is pushed to for
// destination d (host:port or an rtmp:// URL with variables).
func destinationURL(d string, ref sdk.StreamRef) (string, error) {
	if !strings.Contains(d, "://") {
		u := "rtmp://" + d + "/" + ref.App + "/" + ref.Stream
		if ref.Vhost != defaultVhost {
			u += "?vhost=" + ref.Vhost
		}
		return u, nil
	}
	param := strings.TrimPrefix(ref.Param, "?")
	r := strings.NewReplacer("[vhost]", ref.Vhost, "[app]", ref.App, "[stream]", ref.Stream, "[param]", param)
	out := r.Replace(d)
	if i := strings.Index(out, "["); i >= 0 {
		if j := strings.Index(out[i:], "]"); j > 0 {
			return "", fmt.Errorf("%q: unknown variable %s (want %s)", d, out[i:i+j+1], strings.Join(forwardVars, ", "))
		}
	}
	u, err := url.Parse(out)
	if err != nil {
		return "", fmt.Errorf("%q: %v", d, err)
	}
	if u.Scheme != "rtmp" || u.Host == "" {
		return "", fmt.Errorf("%q is not an rtmp://host[:port]/app/stream URL", d)
	}
	if parts := strings.Split(strings.Trim(u.Path, "/"), "/"); len(parts) < 2 || parts[0] == "" || parts[len(parts)-1] == "" {
		return "", fmt.Errorf("%q: the URL needs an app and a stream (rtmp://host/app/stream)", d)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "1935")
	}
	return u.String(), nil
}

// backendTimeout bounds one on_forward request, as SRS's hooks are.
const backendTimeout = 5 * time.Second

// maxBackendURLs bounds what one answer may ask for.
const maxBackendURLs = 16

// askBackend posts SRS 5's on_forward body for a publication and returns
// the destinations the backend answers ({"code":0,"data":{"urls":[...]}}).
// An error says why the answer is not usable; the stream is not forwarded
// to the backend's destinations then (static ones still are).
func (s *Server) askBackend(ctx context.Context, backend string, pub sdk.ClientInfo, ref sdk.StreamRef) ([]string, error) {
	body, _ := json.Marshal(map[string]any{
		"action": "on_forward", "server_id": s.rt.ServerID, "service_id": s.rt.ServiceID,
		"client_id": pub.ID, "ip": pub.IP, "vhost": ref.Vhost, "app": ref.App,
		"tcUrl": ref.TcURL, "stream": ref.Stream, "param": ref.Param,
	})
	ctx, cancel := context.WithTimeout(ctx, backendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, backend, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("backend answered %s", resp.Status)
	}
	var ans struct {
		Code *int `json:"code"`
		Data struct {
			URLs []string `json:"urls"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("backend answer is not SRS's JSON: %v: %.100q", err, b)
	}
	if ans.Code == nil || *ans.Code != 0 {
		return nil, fmt.Errorf("backend answered code %v: %.100q", codeOf(ans.Code), b)
	}
	if len(ans.Data.URLs) > maxBackendURLs {
		return nil, fmt.Errorf("backend asked for %d destinations, at most %d", len(ans.Data.URLs), maxBackendURLs)
	}
	var out []string
	var bad []error
	for _, u := range ans.Data.URLs {
		if !strings.HasPrefix(u, "rtmp://") {
			bad = append(bad, fmt.Errorf("%q is not an rtmp:// URL", u))
			continue
		}
		if _, err := destinationURL(u, ref); err != nil {
			bad = append(bad, err)
			continue
		}
		out = append(out, u)
	}
	return out, errors.Join(bad...)
}

func codeOf(c *int) any {
	if c == nil {
		return "missing"
	}
	return *c
}
