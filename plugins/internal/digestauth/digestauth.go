// Package digestauth checks HTTP-style Digest (RFC 2617, RFC 7616 with
// MD5, as IP cameras, VLC and ffmpeg use it over RTSP) and Basic (RFC
// 7617) Authorization headers against a table of users, with stateless
// nonces: a nonce is its issue time, a random part and an HMAC of both and
// of what it is bound to (the client's IP), so challenging a flood of
// unauthenticated requests costs no memory, an expired nonce is told apart
// from a forged one (stale=true, the client retries without asking its
// user again), and a nonce issued to one address fails from another.
//
// A nonce that passed the password check is remembered until it expires,
// so a captured request cannot be replayed (RFC 7616 §3.3, §5.2): with
// qop=auth each use must bring a larger nonce count, without qop a nonce
// authenticates once; a replay is answered as stale, so that a genuine
// client that reuses a nonce gets a fresh one and retries by itself. Only
// nonces that passed the password check take memory (a flood without the
// password cannot fill the table), and the table is bounded all the same:
// a nonce whose record was evicted is treated as stale.
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
	"sync"
	"time"

	"github.com/icholy/digest"
)

// DefaultNonceTTL is how long a nonce is accepted after it was issued;
// MaxNonceTTL bounds it (the used nonces are remembered that long).
const (
	DefaultNonceTTL = 5 * time.Minute
	MaxNonceTTL     = time.Hour
)

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
	// Replayed: the right digest with a nonce (and nonce count) already
	// used: a replay, or a client reusing a nonce; challenge again with
	// stale=true.
	Replayed
	// Denied: bad, forged or wrong credentials (Check's error says which).
	Denied
)

// Nonces issues and remembers the nonces of a process: one secret and one
// table of used nonces, kept across configuration reloads (the checkers of
// a new configuration accept the nonces of the old one, and refuse its
// replays).
type Nonces struct {
	secret [32]byte
	now    func() time.Time
	used   *tracker
}

// maxTracked bounds the remembered nonces.
const maxTracked = 1 << 16

// NewNonces returns nonces signed with a random secret.
func NewNonces() *Nonces {
	n := &Nonces{now: time.Now, used: newTracker(maxTracked)}
	_, _ = rand.Read(n.secret[:])
	return n
}

// Tracked is the number of used nonces remembered.
func (n *Nonces) Tracked() int { return n.used.size() }

// Options are what a checker accepts.
type Options struct {
	Realm string
	// Users maps user names to passwords; Password, when set, is asked
	// instead.
	Users    map[string]string
	Password func(user string) (pw string, ok bool)
	// Basic also accepts Basic credentials (the password in clear: only
	// over a trusted network).
	Basic bool
	// QOP offers qop="auth" in the challenges: the client's answers then
	// carry a nonce count and a client nonce. Clients that ignore it still
	// authenticate (in RFC 2069 form, once per nonce).
	QOP bool
	// TTL bounds a nonce's age (DefaultNonceTTL when 0, MaxNonceTTL at
	// most).
	TTL time.Duration
}

// Checker checks the credentials of one realm.
type Checker struct {
	Options
	*Nonces
}

// Checker returns a checker of o with n's nonces.
func (n *Nonces) Checker(o Options) *Checker {
	if o.TTL <= 0 {
		o.TTL = DefaultNonceTTL
	}
	o.TTL = min(o.TTL, MaxNonceTTL)
	return &Checker{Options: o, Nonces: n}
}

func (c *Checker) password(user string) (string, bool) {
	if c.Password != nil {
		return c.Password(user)
	}
	pw, ok := c.Users[user]
	return pw, ok
}

// Challenges are the WWW-Authenticate values of a 401 for a client at
// bind: Digest first (clients take the strongest they know), then Basic
// when accepted.
func (c *Checker) Challenges(bind string, stale bool) []string {
	ch := digest.Challenge{Realm: c.Realm, Nonce: c.Nonce(bind), Algorithm: "MD5", Stale: stale}
	if c.QOP {
		ch.QOP = []string{"auth"}
	}
	out := []string{ch.String()}
	if c.Basic {
		out = append(out, "Basic realm="+strconv.Quote(c.Realm))
	}
	return out
}

// Nonce issues a nonce bound to bind (the client's IP).
func (c *Nonces) Nonce(bind string) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return c.sign(strconv.FormatInt(c.now().Unix(), 16)+"."+hex.EncodeToString(r[:]), bind)
}

func (c *Nonces) sign(body, bind string) string {
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(body))
	m.Write([]byte{0})
	m.Write([]byte(bind))
	return body + "." + hex.EncodeToString(m.Sum(nil)[:12])
}

// nonceState tells a genuine nonce (issued by c to bind) from a forged
// one, and a fresh one from an expired one.
func (c *Checker) nonceState(n, bind string) (issued int64, genuine, fresh bool) {
	i := strings.LastIndexByte(n, '.')
	if i < 0 || !hmac.Equal([]byte(n), []byte(c.sign(n[:i], bind))) {
		return 0, false, false
	}
	ts, _, _ := strings.Cut(n, ".")
	issued, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return 0, false, false
	}
	age := c.now().Sub(time.Unix(issued, 0))
	return issued, true, age >= 0 && age < c.TTL
}

// Check reads the Authorization header value h (empty: none) of a request
// of method for uri, from a client at bind. user is the credentials' user
// name when there is one (also on Denied, for the log). uri "" takes the
// digest's own uri (SIP's REGISTER, whose digest-uri is not compared).
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
	case uri != "" && !sameURI(cred.URI, uri):
		return user, Denied, fmt.Errorf("digest uri %q is not the request's %q", cred.URI, uri)
	case cred.QOP != "" && (cred.QOP != "auth" || cred.Nc < 1 || cred.Cnonce == ""):
		return user, Denied, fmt.Errorf("digest qop %q without a nonce count and client nonce", cred.QOP)
	}
	issued, genuine, fresh := c.nonceState(cred.Nonce, bind)
	if !genuine {
		return user, Denied, errors.New("digest nonce was not issued to this client")
	}
	pw, known := c.password(user)
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
	nc := 0
	if cred.QOP != "" {
		nc = cred.Nc
	}
	if !c.used.use(user+" "+cred.Nonce, issued, nc, c.now().Add(-MaxNonceTTL).Unix()) {
		return user, Replayed, fmt.Errorf("digest nonce already used (nc %d)", nc)
	}
	return user, OK, nil
}

// tracker remembers the nonces that authenticated, until they expire.
type tracker struct {
	mu    sync.Mutex
	used  map[string]use
	floor int64 // nonces issued at or before this unix second are stale
	max   int
	swept int64
}

type use struct {
	nc     int
	issued int64
}

func newTracker(max int) *tracker { return &tracker{used: map[string]use{}, max: max} }

// use records an authentication with nonce key k (issued at unix second
// issued) and count nc (0 without qop); false means a replay or a nonce
// too old to be checked. Records issued before expired go.
func (t *tracker) use(k string, issued int64, nc int, expired int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if expired > t.swept {
		for key, u := range t.used {
			if u.issued < expired {
				delete(t.used, key)
			}
		}
		t.swept = expired
	}
	if issued <= t.floor {
		return false
	}
	u, ok := t.used[k]
	if ok && (nc == 0 || nc <= u.nc) {
		return false
	}
	if !ok && len(t.used) >= t.max {
		t.evictOldest()
	}
	t.used[k] = use{nc: nc, issued: issued}
	return true
}

// evictOldest drops the records of the oldest issue second and raises the
// floor to it, so those nonces stay refused.
func (t *tracker) evictOldest() {
	oldest := int64(-1)
	for _, u := range t.used {
		if oldest < 0 || u.issued < oldest {
			oldest = u.issued
		}
	}
	for k, u := range t.used {
		if u.issued <= oldest {
			delete(t.used, k)
		}
	}
	t.floor = max(t.floor, oldest)
}

func (t *tracker) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.used)
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
	want, known := c.password(user)
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
