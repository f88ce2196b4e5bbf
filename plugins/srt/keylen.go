package main

import (
	"reflect"

	srt "github.com/datarhei/gosrt"
)

// callerKeyLen returns the key length in bytes (16, 24 or 32) of the key
// material an encrypting caller sent in its handshake (the KLen field of
// the KMREQ extension, SRT RFC draft §3.2.2).
//
// gosrt v0.9.0 parses the field but does not expose it: ConnRequest has
// IsEncrypted and SetPassphrase only, and SetPassphrase unwraps a key of
// any length. So it is read from the request's parsed handshake
// (connRequest.handshake.SRTKM.KLen) with reflection, read-only. ok is
// false when the field is not where it is in v0.9.0 (another gosrt); then
// pbkeylen cannot be enforced and the caller is refused.
// TestCallerKeyLen pins this against a real gosrt dialer.
func callerKeyLen(req srt.ConnRequest) (n int, ok bool) {
	defer func() {
		if recover() != nil {
			n, ok = 0, false
		}
	}()
	v := reflect.ValueOf(req)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0, false
	}
	hs := v.Elem().FieldByName("handshake")
	if !hs.IsValid() || hs.Kind() != reflect.Pointer || hs.IsNil() {
		return 0, false
	}
	km := hs.Elem().FieldByName("SRTKM")
	if !km.IsValid() || km.Kind() != reflect.Pointer || km.IsNil() {
		return 0, false
	}
	kl := km.Elem().FieldByName("KLen")
	if !kl.IsValid() || !kl.CanUint() {
		return 0, false
	}
	switch n := int(kl.Uint()); n {
	case 16, 24, 32:
		return n, true
	}
	return 0, false
}
