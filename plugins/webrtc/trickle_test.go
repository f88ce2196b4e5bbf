package main

import (
	"net/url"
	"strings"
	"testing"
)

const testFrag = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" +
	"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
	"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n" +
	"a=end-of-candidates\r\n"

func TestParseSDPFrag(t *testing.T) {
	f, err := parseSDPFrag(testFrag)
	if err != nil {
		t.Fatal(err)
	}
	if f.ufrag != "EsAw" || f.pwd != "P2uYro0UCOQ4zxjKXaWCBui1" || f.mid != "0" || len(f.candidates) != 2 || !f.end ||
		!strings.HasPrefix(f.candidates[0], "candidate:1387637174 ") {
		t.Fatalf("parsed %+v", f)
	}
	for name, body := range map[string]string{
		"not sdp":        "hello\r\n",
		"ufrag only":     "a=ice-ufrag:x\r\n",
		"two ufrags":     "a=ice-ufrag:x\r\na=ice-pwd:y\r\na=ice-ufrag:z\r\n",
		"too many cands": strings.Repeat("a=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n", maxFragCandidates+1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSDPFrag(body); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestETagMatches(t *testing.T) {
	for _, c := range []struct {
		ifMatch, etag string
		want          bool
	}{
		{`"abc"`, `"abc"`, true},
		{`abc`, `"abc"`, true},
		{`W/"abc"`, `"abc"`, true},
		{`"x", "abc"`, `"abc"`, true},
		{`*`, `"abc"`, true},
		{`"abd"`, `"abc"`, false},
		{``, `"abc"`, false},
	} {
		if got := etagMatches(c.ifMatch, c.etag); got != c.want {
			t.Errorf("etagMatches(%q, %q) = %v", c.ifMatch, c.etag, got)
		}
	}
}

func TestReplaceICE(t *testing.T) {
	out := replaceICE(minimalOffer, "NEWU", "NEWPWDNEWPWDNEWPWDNEWPW", []string{"candidate:1 1 udp 1 192.0.2.1 5 typ host"})
	if strings.Contains(out, "a=ice-ufrag:abcd") || !strings.Contains(out, "a=ice-ufrag:NEWU") ||
		!strings.Contains(out, "a=candidate:1 1 udp 1 192.0.2.1 5 typ host") {
		t.Fatalf("replaced:\n%s", out)
	}
	f, err := parseSDPFrag(iceFragOf(out))
	if err != nil || f.ufrag != "NEWU" || len(f.candidates) != 1 {
		t.Fatalf("frag of replaced: %+v %v", f, err)
	}
}

// FuzzSDPFrag: any PATCH body parses or is refused, never a panic, and
// what parses keeps its bounds.
func FuzzSDPFrag(f *testing.F) {
	f.Add(testFrag)
	f.Add("a=ice-ufrag:x\r\na=ice-pwd:y\r\n")
	f.Add("m=video 9\r\na=mid:1\r\na=candidate:\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		fr, err := parseSDPFrag(body)
		if err != nil {
			return
		}
		if len(fr.candidates) > maxFragCandidates || (fr.ufrag == "") != (fr.pwd == "") {
			t.Fatalf("bounds broken: %+v", fr)
		}
		_ = replaceICE(body, fr.ufrag, fr.pwd, fr.candidates)
		_ = iceFragOf(body)
	})
}

func TestWithBearer(t *testing.T) {
	for _, c := range []struct{ query, auth, want string }{
		{"app=live&stream=s", "Bearer s3cret", "?token=s3cret"},
		{"app=live&stream=s", "bearer  s3cret ", "?token=s3cret"},
		{"app=live&stream=s&token=url", "Bearer other", "?token=url"},
		{"app=live&stream=s", "Basic dXNlcg==", ""},
		{"app=live&stream=s", "Bearer ", ""},
	} {
		q, _ := url.ParseQuery(c.query)
		withBearer(q, c.auth)
		if got := paramOf(q); got != c.want {
			t.Errorf("%q + %q: param %q, want %q", c.query, c.auth, got, c.want)
		}
	}
}
