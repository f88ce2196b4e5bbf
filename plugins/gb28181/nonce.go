package main

import (
	"sync"
	"time"
)

// nonceLifetime is how long a digest nonce is accepted after it was issued.
const nonceLifetime = 5 * time.Minute

// nonceTracker remembers the nonces that authenticated a REGISTER, so a
// captured request cannot be replayed within the nonce's lifetime (RFC
// 2617 §3.2.3, RFC 7616 §3.3): with qop=auth each use must bring a larger
// nonce count; without qop a nonce authenticates once. Nonces are issued
// statelessly (an HMAC of their time), so only nonces that passed the
// password check take memory, which a REGISTER flood without the password
// cannot do; the table is bounded all the same, and a nonce whose record
// was evicted is treated as stale.
type nonceTracker struct {
	mu    sync.Mutex
	used  map[string]nonceUse
	floor int64 // nonces issued at or before this unix second are stale
	max   int
}

type nonceUse struct {
	nc     int
	issued int64
}

func newNonceTracker(max int) *nonceTracker {
	return &nonceTracker{used: map[string]nonceUse{}, max: max}
}

// use records an authentication with nonce n (issued at unix second
// issued) and nonce count nc (0 without qop); false means a replay or a
// nonce too old to be checked: the device must be challenged again.
func (t *nonceTracker) use(n string, issued int64, nc int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if issued <= t.floor {
		return false
	}
	if u, ok := t.used[n]; ok && (nc == 0 || nc <= u.nc) {
		return false
	}
	if _, ok := t.used[n]; !ok && len(t.used) >= t.max {
		t.evictOldest()
	}
	t.used[n] = nonceUse{nc: nc, issued: issued}
	return true
}

// evictOldest drops the records of the oldest issue second and raises the
// floor to it, so those nonces stay refused.
func (t *nonceTracker) evictOldest() {
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

// sweep forgets the nonces past their lifetime (they are refused as
// expired anyway).
func (t *nonceTracker) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := now.Add(-nonceLifetime).Unix()
	for k, u := range t.used {
		if u.issued < limit {
			delete(t.used, k)
		}
	}
}

func (t *nonceTracker) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.used)
}
