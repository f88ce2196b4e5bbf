// Command rill is the Rill media server daemon: it loads conf.hcl, launches
// and supervises the plugin processes, runs the stream hub and serves the
// HTTP API. See README.md.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/rill-media/rill/core/internal/daemon"
	"github.com/rill-media/rill/core/internal/pluginhost"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == pluginhost.ExecFlag {
		// The core as a plugin's launcher (rlimits): see pluginhost.RunAs.
		err := pluginhost.ExecWithLimits(os.Args[2:])
		fmt.Fprintf(os.Stderr, "rill: %v\n", err)
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == "plugins" {
		if err := daemon.Plugins(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "rill: %v\n", err)
			os.Exit(1)
		}
		return
	}
	conf := flag.String("c", "conf.hcl", "config file")
	test := flag.Bool("t", false, "check the config and the plugins, then exit")
	showVersion := flag.Bool("v", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(daemon.Version)
		return
	}
	if err := daemon.Run(*conf, *test); err != nil {
		fmt.Fprintf(os.Stderr, "rill: %v\n", err)
		os.Exit(1)
	}
}
