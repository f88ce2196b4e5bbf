package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenBackend is an SRS-style token-auth backend: it reads ?token= from
// the param of on_connect and on_publish, the way SRS users check tokens,
// and refuses with a non-zero code when it is not one it knows.
type tokenBackend struct {
	*httptest.Server
	mu   sync.Mutex
	seen []tokenCall
}

type tokenCall struct {
	action, token, stream string
	allowed               bool
}

func newTokenBackend(t *testing.T, connectOK, publishOK []string) *tokenBackend {
	b := &tokenBackend{}
	allow := map[string][]string{"on_connect": connectOK, "on_publish": publishOK}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Action string `json:"action"`
			Stream string `json:"stream"`
			Param  string `json:"param"`
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		q, _ := url.ParseQuery(strings.TrimPrefix(body.Param, "?"))
		tok := q.Get("token")
		ok := true
		if list, checked := allow[body.Action]; checked {
			ok = false
			for _, a := range list {
				ok = ok || tok == a
			}
		}
		b.mu.Lock()
		b.seen = append(b.seen, tokenCall{body.Action, tok, body.Stream, ok})
		b.mu.Unlock()
		if !ok {
			_, _ = io.WriteString(w, `{"code":403,"msg":"bad token"}`)
			return
		}
		_, _ = io.WriteString(w, `{"code":0}`)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *tokenBackend) calls(action, token string) []tokenCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []tokenCall
	for _, c := range b.seen {
		if c.action == action && c.token == token {
			out = append(out, c)
		}
	}
	return out
}

// TestTokenAuthOnConnectAndPublish runs ffmpeg publishers against a backend
// that checks the token of the RTMP URL in on_connect and in on_publish: a
// token unknown to on_connect is refused there, one on_connect knows but
// on_publish does not is refused at on_publish, the right one publishes.
func TestTokenAuthOnConnectAndPublish(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	tb := newTokenBackend(t, []string{"good", "connect-only"}, []string{"good"})
	d, addr := startRTMP(t, "", fmt.Sprintf(`vhost "__defaultVhost__" {
  hooks {
    on_connect = [%q]
    on_publish = [%q]
    timeout    = "5s"
  }
}
`, tb.URL+"/auth", tb.URL+"/auth"))
	refusedPublish := func(token string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
			"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "6",
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "flv", "rtmp://"+addr+"/live/secure?token="+token)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("token %q: ffmpeg not refused within 40s", token)
		}
		if err == nil {
			t.Fatalf("token %q: publish accepted: %s", token, out)
		}
	}

	refusedPublish("bad")
	if c := tb.calls("on_connect", "bad"); len(c) != 1 || c[0].allowed || c[0].stream != "secure" {
		t.Fatalf("on_connect with the bad token: %+v", c)
	}
	if c := tb.calls("on_publish", "bad"); len(c) != 0 {
		t.Fatalf("on_publish after a refused on_connect: %+v", c)
	}

	refusedPublish("connect-only")
	if c := tb.calls("on_connect", "connect-only"); len(c) != 1 || !c[0].allowed {
		t.Fatalf("on_connect with the connect-only token: %+v", c)
	}
	if c := tb.calls("on_publish", "connect-only"); len(c) != 1 || c[0].allowed {
		t.Fatalf("on_publish with the connect-only token: %+v", c)
	}

	var streams streamsReply
	if err := d.GetJSON("/api/v1/streams/", &streams); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams.Streams {
		if s.Name == "secure" && s.Publish.Active {
			t.Fatalf("a refused publisher is live: %+v", streams)
		}
	}

	ffmpegPublish(t, "rtmp://"+addr+"/live/secure?token=good", 60)
	waitPublished(t, d, "live", "secure")
	if c := tb.calls("on_connect", "good"); len(c) != 1 || !c[0].allowed {
		t.Fatalf("on_connect with the good token: %+v", c)
	}
	if c := tb.calls("on_publish", "good"); len(c) != 1 || !c[0].allowed {
		t.Fatalf("on_publish with the good token: %+v", c)
	}
}
