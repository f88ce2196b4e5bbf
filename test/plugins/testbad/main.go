// Command testbad is a test plugin that misbehaves on purpose, as told by
// the RILL_TESTBAD environment variable (set with env = {...} in its plugin
// block):
//
//	junk-stdout   write junk to stdout before the go-plugin handshake
//	api-version   claim plugin API version 99 when described
//	crash-after   run, then exit with status 2 after 700 ms
//	panic-start   panic inside Start
//	(unset)       behave
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rill-media/rill/sdk"
)

type bad struct{ mode string }

func (b *bad) Info() sdk.Info { return sdk.Info{Name: "testbad", Version: "0.0.1"} }

func (b *bad) Start(context.Context, *sdk.Runtime) error {
	switch b.mode {
	case "crash-after":
		go func() {
			time.Sleep(700 * time.Millisecond)
			os.Exit(2)
		}()
	case "panic-start":
		panic("testbad: panic in Start")
	}
	return nil
}

func main() {
	b := &bad{mode: os.Getenv("RILL_TESTBAD")}
	describing := len(os.Args) > 1 && os.Args[1] == "--rill-describe"
	switch {
	case b.mode == "junk-stdout" && !describing:
		fmt.Println("hello, I am not a handshake")
	case b.mode == "api-version" && describing:
		fmt.Println(`{"name":"testbad","version":"0.0.1","api_version":99}`)
		os.Exit(0)
	}
	sdk.Serve(b)
}
