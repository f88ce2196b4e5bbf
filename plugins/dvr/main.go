// Command dvr is Rill's recorder plugin: it records the live streams of
// vhosts with a dvr {} block to FLV or fragmented MP4 files, as SRS's DVR
// does (plans session and segment, SRS's path template, time_jitter,
// on_dvr callbacks), and starts or stops one stream's recording through
// the API.
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
