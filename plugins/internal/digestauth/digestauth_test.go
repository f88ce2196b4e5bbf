package digestauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// answer is what a client (icholy/digest, as ffmpeg computes it) sends
// for the challenge.
func answer(t *testing.T, chal string, method, uri, user, pw string, qop bool) string {
	t.Helper()
	ch, err := digest.ParseChallenge(chal)
	if err != nil {
		t.Fatal(err)
	}
	if qop {
		ch.QOP = []string{"auth"}
	}
	cred, err := digest.Digest(ch, digest.Options{Method: method, URI: uri, Username: user, Password: pw, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func TestCheck(t *testing.T) {
	c := NewNonces().Checker(Options{Realm: "rill", Users: map[string]string{"alice": "s3cret"}, TTL: time.Minute})
	const uri = "rtsp://127.0.0.1:8554/live/a"
	chal := c.Challenges("10.0.0.1", false)
	if len(chal) != 1 || !strings.HasPrefix(chal[0], "Digest ") || !strings.Contains(chal[0], `realm="rill"`) {
		t.Fatalf("challenges %q", chal)
	}
	check := func(name, h, method, uri, bind string, want Result) {
		t.Helper()
		user, res, err := c.Check(h, method, uri, bind)
		if res != want {
			t.Errorf("%s: result %d (user %q, err %v), want %d", name, res, user, err, want)
		}
		if want == OK && user != "alice" {
			t.Errorf("%s: user %q", name, user)
		}
		if want == Denied && err == nil {
			t.Errorf("%s: denied without a reason", name)
		}
	}
	check("none", "", "DESCRIBE", uri, "10.0.0.1", Missing)
	fresh := func() string { return c.Challenges("10.0.0.1", false)[0] }
	good := answer(t, chal[0], "DESCRIBE", uri, "alice", "s3cret", false)
	check("digest", good, "DESCRIBE", uri, "10.0.0.1", OK)
	check("replayed", good, "DESCRIBE", uri, "10.0.0.1", Replayed)
	qop := fresh()
	check("digest qop", answer(t, qop, "DESCRIBE", uri, "alice", "s3cret", true), "DESCRIBE", uri, "10.0.0.1", OK)
	check("qop count repeated", answer(t, qop, "DESCRIBE", uri, "alice", "s3cret", true), "DESCRIBE", uri, "10.0.0.1", Replayed)
	ch, _ := digest.ParseChallenge(qop)
	ch.QOP = []string{"auth"}
	cred, _ := digest.Digest(ch, digest.Options{Method: "DESCRIBE", URI: uri, Username: "alice", Password: "s3cret", Count: 2})
	check("qop next count", cred.String(), "DESCRIBE", uri, "10.0.0.1", OK)
	check("any uri", answer(t, fresh(), "DESCRIBE", "sip:x@y", "alice", "s3cret", false), "DESCRIBE", "", "10.0.0.1", OK)
	check("digest path uri", answer(t, fresh(), "DESCRIBE", "/live/a", "alice", "s3cret", false), "DESCRIBE", uri, "10.0.0.1", OK)
	if c.Tracked() != 4 {
		t.Errorf("%d nonces tracked, want 4", c.Tracked())
	}
	check("wrong password", answer(t, chal[0], "DESCRIBE", uri, "alice", "nope", false), "DESCRIBE", uri, "10.0.0.1", Denied)
	check("unknown user", answer(t, chal[0], "DESCRIBE", uri, "bob", "s3cret", false), "DESCRIBE", uri, "10.0.0.1", Denied)
	check("other method", answer(t, chal[0], "ANNOUNCE", uri, "alice", "s3cret", false), "DESCRIBE", uri, "10.0.0.1", Denied)
	check("other uri", answer(t, chal[0], "DESCRIBE", "rtsp://127.0.0.1:8554/live/b", "alice", "s3cret", false), "DESCRIBE", uri, "10.0.0.1", Denied)
	check("other vhost", answer(t, chal[0], "DESCRIBE", "rtsp://v2/live/a", "alice", "s3cret", false), "DESCRIBE", uri, "10.0.0.1", Denied)
	check("other client", answer(t, chal[0], "DESCRIBE", uri, "alice", "s3cret", false), "DESCRIBE", uri, "10.0.0.2", Denied)
	forged := strings.Replace(chal[0], `nonce="`, `nonce="0`, 1)
	check("forged nonce", answer(t, forged, "DESCRIBE", uri, "alice", "s3cret", false), "DESCRIBE", uri, "10.0.0.1", Denied)
	check("basic off", "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:s3cret")), "DESCRIBE", uri, "10.0.0.1", Denied)
	check("junk", "Bearer xyz", "DESCRIBE", uri, "10.0.0.1", Denied)
	check("junk digest", `Digest username="alice", nonce=`, "DESCRIBE", uri, "10.0.0.1", Denied)

	// An expired nonce with the right password is stale; with a wrong one,
	// denied; expired nonces are forgotten.
	old := answer(t, fresh(), "DESCRIBE", uri, "alice", "s3cret", false)
	oldWrong := answer(t, fresh(), "DESCRIBE", uri, "alice", "x", false)
	c.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	check("stale", old, "DESCRIBE", uri, "10.0.0.1", Stale)
	check("stale wrong", oldWrong, "DESCRIBE", uri, "10.0.0.1", Denied)
	if ch := c.Challenges("10.0.0.1", true); !strings.Contains(ch[0], "stale=true") || strings.Contains(ch[0], "qop") {
		t.Errorf("stale challenge %q", ch[0])
	}
	c.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	check("after expiry", answer(t, fresh(), "DESCRIBE", uri, "alice", "s3cret", false), "DESCRIBE", uri, "10.0.0.1", OK)
	if c.Tracked() != 1 {
		t.Errorf("%d nonces tracked after expiry, want 1", c.Tracked())
	}
	c.QOP = true
	if ch := c.Challenges("10.0.0.1", false); !strings.Contains(ch[0], `qop="auth"`) {
		t.Errorf("qop challenge %q", ch[0])
	}
}

func TestTrackerBound(t *testing.T) {
	tr := newTracker(2)
	if !tr.use("a", 10, 0, 0) || !tr.use("b", 11, 0, 0) || tr.use("a", 10, 0, 0) {
		t.Fatal("first uses")
	}
	if !tr.use("c", 12, 0, 0) || tr.size() != 2 {
		t.Fatalf("evict: size %d", tr.size())
	}
	if tr.use("d", 10, 0, 0) {
		t.Fatal("a nonce of an evicted second accepted")
	}
}

func TestBasic(t *testing.T) {
	c := NewNonces().Checker(Options{Realm: "rill", Password: func(u string) (string, bool) { return "s3cret", u == "alice" }, Basic: true})
	if ch := c.Challenges("a", false); len(ch) != 2 || ch[1] != `Basic realm="rill"` {
		t.Fatalf("challenges %q", ch)
	}
	b := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	if u, r, err := c.Check(b("alice:s3cret"), "ANNOUNCE", "/x", "a"); r != OK || u != "alice" {
		t.Errorf("basic: %q %d %v", u, r, err)
	}
	for _, h := range []string{b("alice:nope"), b("bob:s3cret"), b("alice"), "Basic !!!"} {
		if _, r, _ := c.Check(h, "ANNOUNCE", "/x", "a"); r != Denied {
			t.Errorf("%q: %d", h, r)
		}
	}
}

// FuzzCheck: any Authorization header is answered without a panic, and
// only credentials made with the password pass.
func FuzzCheck(f *testing.F) {
	c := NewNonces().Checker(Options{Realm: "rill", Users: map[string]string{"alice": "s3cret"}, Basic: true, TTL: time.Minute})
	ch := c.Challenges("ip", false)[0]
	good, _ := digest.ParseChallenge(ch)
	cred, _ := digest.Digest(good, digest.Options{Method: "DESCRIBE", URI: "/a", Username: "alice", Password: "s3cret"})
	f.Add(cred.String(), "/a")
	f.Add(`Digest username="alice", realm="rill", nonce="1.2.3", uri="/a", response="00", qop=auth, nc=zz`, "/a")
	f.Add("Basic YWxpY2U6czNjcmV0", "/a")
	f.Add(`Digest username=alice,,realm="`, "")
	f.Fuzz(func(t *testing.T, h, uri string) {
		user, res, err := c.Check(h, "DESCRIBE", uri, "ip")
		if (res == Denied || res == Replayed) && err == nil {
			t.Fatalf("denied without a reason: %q", h)
		}
		if res == OK && user != "alice" {
			t.Fatalf("ok for %q", user)
		}
	})
}

// TestNonceUnique: two challenges in the same second get different nonces
// (two clients answering nc=1 to the same nonce would be taken for a
// replay), each genuine and fresh; a tampered one is not genuine.
func TestNonceUnique(t *testing.T) {
	c := NewNonces().Checker(Options{Realm: "r"})
	now := time.Now()
	c.now = func() time.Time { return now }
	a, b := c.Nonce("x"), c.Nonce("x")
	if a == b {
		t.Fatalf("same nonce twice in a second: %s", a)
	}
	for _, n := range []string{a, b} {
		if issued, genuine, fresh := c.nonceState(n, "x"); !genuine || !fresh || issued != now.Unix() {
			t.Fatalf("nonce %s: issued %d genuine %v fresh %v", n, issued, genuine, fresh)
		}
	}
	if _, genuine, _ := c.nonceState(a[:len(a)-1]+"x", "x"); genuine {
		t.Fatal("tampered nonce genuine")
	}
	if _, genuine, fresh := c.nonceState(a, "x"); !genuine || !fresh {
		t.Fatal("nonce not fresh")
	}
	c.now = func() time.Time { return now.Add(DefaultNonceTTL + time.Second) }
	if _, genuine, fresh := c.nonceState(a, "x"); !genuine || fresh {
		t.Fatal("an old nonce is genuine but not fresh")
	}
}
