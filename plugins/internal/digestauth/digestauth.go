// Package digestauth checks HTTP-style Digest (RFC 2617, RFC 7616 with
// MD5, as IP cameras, VLC and ffmpeg use it over RTSP) and Basic (RFC
// 7617) Authorization headers against a table of users, with stateless
// nonces: a nonce is its issue time, a random part and an HMAC of both and
// of what it is bound to (the client's IP), so challenging a flood of
// unauthenticated requests costs no memory, an expired nonce is told apart
// from a forged one (stale=true, the client retries without asking its
// user again), and a nonce issued to one address fails from another.
package digestauth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/icholy/digest"
)

// DefaultNonceTTL is how long a nonce is accepted after it was issued.
const DefaultNonceTTL = 5 * time.Minute

// Result is the outcome of a check.
type Result int

const (
	// OK: the credentials are a user's; Check's user is theirs.
	OK Result = iota
	// Missing: no Authorization header: challenge the client.
	Missing
	// Stale: a digest made with a genuine nonce that expired: challenge
	// again with stale=true.
	Stale
	// Denied: bad, forged or wrong credentials (Check's error says which).
	Denied
)

// Checker checks the credentials of one realm. Its zero value is not
// usable: see New.
type Checker struct {
	Realm string
	// Users maps user names to passwords.
	Users map[string]string
	// Basic also accepts Basic credentials (the password in clear: only
	// over a trusted network).
	Basic bool
	// TTL bounds a nonce's age (DefaultNonceTTL when 0).
	TTL time.Duration

	secret [32]byte
	now    func() time.Time
}

// New returns a checker signing its nonces with secret (nil: a random
// one). Checkers sharing a secret accept each other's nonces: a process
// keeps one across configuration reloads, so a handshake under way when
// the configuration changes still completes.
func New(realm string, users map[string]string, basic bool, ttl time.Duration, secret []byte) *Checker {
	c := &Checker{Realm: realm, Users: users, Basic: basic, TTL: ttl, now: time.Now}
	if c.TTL <= 0 {
		c.TTL = DefaultNonceTTL
	}
	if secret == nil {
		_, _ = rand.Read(c.secret[:])
	} else {
		c.secret = sha256.Sum256(secret)
	}
	return c
}

// Challenges are the WWW-Authenticate values of a 401 for a client at
// bind: Digest first (clients take the strongest they know), then Basic
// when accepted.
func (c *Checker) Challenges(bind string, stale bool) []string {
	ch := digest.Challenge{Realm: c.Realm, Nonce: c.Nonce(bind), Algorithm: "MD5", Stale: stale}
	out := []string{ch.String()}
	if c.Basic {
		out = append(out, "Basic realm="+strconv.Quote(c.Realm))
	}
	return out
}

// Nonce issues a nonce bound to bind (the client's IP).
func (c *Checker) Nonce(bind string) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return c.sign(strconv.FormatInt(c.now().Unix(), 16)+"."+hex.EncodeToString(r[:]), bind)
}

func (c *Checker) sign(body, bind string) string {
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(body))
	m.Write([]byte{0})
	m.Write([]byte(bind))
	return body + "." + hex.EncodeToString(m.Sum(nil)[:12])
}

// nonceState tells a genuine nonce (issued by c to bind) from a forged
// one, and a fresh one from an expired one.
func (c *Checker) nonceState(n, bind string) (genuine, fresh bool) {
	i := strings.LastIndexByte(n, '.')
	if i < 0 || !hmac.Equal([]byte(n), []byte(c.sign(n[:i], bind))) {
		return false, false
	}
	ts, _, _ := strings.Cut(n, ".")
	issued, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return false, false
	}
	age := c.now().Sub(time.Unix(issued, 0))
	return true, age >= 0 && age < c.TTL
}

// Check reads the Authorization header value h (empty: none) of a request
// of method for uri, from a client at bind. user is the credentials' user
// name when there is one (also on Denied, for the log).
func (c *Checker) Check(h, method, uri, bind string) (user string, res Result, err error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", Missing, nil
	}
	if scheme, rest, _ := strings.Cut(h, " "); strings.EqualFold(scheme, "Basic") {
		return c.checkBasic(strings.TrimSpace(rest))
	}
	if !digest.IsDigest(h) {
		return "", Denied, errors.New("authorization is neither Digest nor Basic")
	}
	cred, err := digest.ParseCredentials(h)
	if err != nil {
		return "", Denied, fmt.Errorf("bad digest authorization: %w", err)
	}
	user = cred.Username
	switch {
	case cred.Userhash:
		return user, Denied, errors.New("digest userhash is not supported")
	case cred.Algorithm != "" && !strings.EqualFold(cred.Algorithm, "MD5"):
		return user, Denied, fmt.Errorf("digest algorithm %q is not MD5", cred.Algorithm)
	case cred.Realm != c.Realm:
		return user, Denied, fmt.Errorf("digest realm %q is not %q", cred.Realm, c.Realm)
	case !sameURI(cred.URI, uri):
		return user, Denied, fmt.Errorf("digest uri %q is not the request's %q", cred.URI, uri)
	case cred.QOP != "" && (cred.QOP != "auth" || cred.Nc < 1 || cred.Cnonce == ""):
		return user, Denied, fmt.Errorf("digest qop %q without a nonce count and client nonce", cred.QOP)
	}
	genuine, fresh := c.nonceState(cred.Nonce, bind)
	if !genuine {
		return user, Denied, errors.New("digest nonce was not issued to this client")
	}
	pw, known := c.Users[user]
	if !known {
		pw = "\x00unknown user" // compute all the same: no timing tells users apart
	}
	ha1 := md5hex(user + ":" + c.Realm + ":" + pw)
	ha2 := md5hex(method + ":" + cred.URI)
	want := ""
	if cred.QOP == "" {
		want = md5hex(ha1 + ":" + cred.Nonce + ":" + ha2)
	} else {
		want = md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, cred.Nonce, cred.Nc, cred.Cnonce, cred.QOP, ha2))
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(cred.Response))) != 1 || !known {
		return user, Denied, errors.New("wrong user or password")
	}
	if !fresh {
		return user, Stale, nil
	}
	return user, OK, nil
}

func (c *Checker) checkBasic(b64 string) (string, Result, error) {
	if !c.Basic {
		return "", Denied, errors.New("basic authorization is not accepted (digest only)")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", Denied, errors.New("basic authorization is not base64")
	}
	user, pw, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", Denied, errors.New("basic authorization without a colon")
	}
	want, known := c.Users[user]
	if subtle.ConstantTimeCompare([]byte(pw), []byte(want)) != 1 || !known {
		return user, Denied, errors.New("wrong user or password")
	}
	return user, OK, nil
}

// sameURI compares a digest's uri with the request's: equal, or the
// path and query alone of the other (some clients put the path alone in
// the digest). Two absolute URIs must be equal: the host may be a vhost.
func sameURI(a, b string) bool {
	absA, absB := strings.Contains(a, "://"), strings.Contains(b, "://")
	return a == b || (absA != absB && pathOf(a) == pathOf(b))
}

func pathOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		if j := strings.IndexByte(u, '/'); j >= 0 {
			return u[j:]
		}
		return "/"
	}
	return u
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
