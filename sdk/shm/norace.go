//go:build !race

package shm

// raceEnabled selects word-wise atomic copies of payload bytes, see copy.go.
const raceEnabled = false
