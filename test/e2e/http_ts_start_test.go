package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestHTTPTSStartsWithinFirstBytes reads only the first 256 KiB of a live
// HTTP-TS stream and checks that ffprobe finds both streams in them: the PAT
// and PMT must be trusted at once (with wrong CRCs FFmpeg read megabytes, 14-18 s
// of media, before it started).
func TestHTTPTSStartsWithinFirstBytes(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 10)
	d := StartDaemon(t, httpConfig(file, "av", "  loop = true", "", ""))
	base := "http://" + hlsAddr(t, d) + "/live/av"
	httpWaitStream(t, d, base+".flv")

	resp, err := http.Get(base + ".ts")
	if err != nil {
		t.Fatal(err)
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	resp.Body.Close()
	if err != nil || len(head) < 256<<10 {
		t.Fatalf("read %d bytes of %s.ts: %v", len(head), base, err)
	}
	part := filepath.Join(t.TempDir(), "head.ts")
	if err := os.WriteFile(part, head, 0o644); err != nil {
		t.Fatal(err)
	}
	httpWantCodecs(t, "first 256 KiB of ts", httpProbe(t, part, 3), "h264", "aac")

	// The streams must come from the PMT (a program holding both), not from
	// FFmpeg guessing PES streams after it gave up on the tables.
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "program=program_id,nb_streams",
		"-of", "json", part).Output()
	if err != nil {
		t.Fatalf("ffprobe programs of %s: %v", part, err)
	}
	var r struct {
		Programs []struct {
			ID      int `json:"program_id"`
			Streams int `json:"nb_streams"`
		} `json:"programs"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	if len(r.Programs) != 1 || r.Programs[0].Streams != 2 {
		t.Fatalf("ffprobe found programs %+v in the first 256 KiB, want one program with both streams (PAT/PMT trusted)", r.Programs)
	}
}
