package sdk

import (
	"crypto/rand"
)

const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// NewClientID returns a new random client id of 8 lower-case letters and
// digits, like SRS's. Ids are unique across plugin processes with
// overwhelming probability (36^8 ≈ 2.8e12).
func NewClientID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}
