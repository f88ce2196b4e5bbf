//go:build tools

// Package bench holds the benchmark's helpers: the physical floor
// (bench/floor), the replay of the test file (bench/replay) and the make
// scripts. This file records the lalserver dependency, so that
//
//	go build -o bin/lalserver github.com/q191201771/lal/app/lalserver
//
// builds the lalserver of go.mod's lal version inside this module and `go
// mod tidy` keeps it. It is never compiled (a main package cannot be
// imported).
package bench

import _ "github.com/q191201771/lal/app/lalserver"
