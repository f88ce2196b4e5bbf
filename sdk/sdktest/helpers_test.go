package sdktest_test

import "github.com/rill-media/rill/sdk/wire"

func sdkHTTP(path string) wire.HTTPRequest { return wire.HTTPRequest{Method: "GET", Path: path} }
