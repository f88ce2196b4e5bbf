package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// Container formats, chosen by the path's extension.
const (
	formatFLV = "flv"
	formatMP4 = "mp4"
)

// template is SRS's dvr_path: a file path with the variables [vhost],
// [app], [stream], [2006] (year), [01] (month), [02] (day), [15] (hour),
// [04] (minute), [05] (second), [999] (milliseconds) and [timestamp]
// (Unix time in ms). Other bracketed text stays as it is.
type template struct {
	raw    string
	format string
	// root is the directory before the first variable: every rendered path
	// must stay inside it (docs/THREATS.md row 21).
	root string
}

var errTraversal = errors.New("stream names would leave the recording directory")

func parseTemplate(s string) (*template, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	if strings.ContainsRune(s, 0) {
		return nil, errors.New("path contains a NUL byte")
	}
	var format string
	switch strings.ToLower(filepath.Ext(s)) {
	case ".flv":
		format = formatFLV
	case ".mp4":
		format = formatMP4
	default:
		return nil, fmt.Errorf("%q must end with .flv or .mp4 (the extension chooses the container)", s)
	}
	prefix := s
	if i := strings.IndexByte(s, '['); i >= 0 {
		prefix = s[:i]
	}
	root := filepath.Dir(prefix + "x") // the directory the prefix names, "." if none
	return &template{raw: s, format: format, root: filepath.Clean(root)}, nil
}

// The hub's rule for names (sdk.ValidName, sdk.ValidApp).
var validName, validApp = sdk.ValidName, sdk.ValidApp

// render returns the path for a file of vhost/app/stream opened at t. The
// names come from the network: they must pass the allow-list and the
// result must stay under the template's root.
func (tp *template) render(vhost, app, stream string, t time.Time) (string, error) {
	if !validName(vhost) || !validApp(app) || !validName(stream) {
		return "", fmt.Errorf("%w: vhost %q app %q stream %q", errTraversal, vhost, app, stream)
	}
	two := func(n int) string { return fmt.Sprintf("%02d", n) }
	r := strings.NewReplacer(
		"[vhost]", vhost, "[app]", app, "[stream]", stream,
		"[2006]", fmt.Sprintf("%04d", t.Year()), "[01]", two(int(t.Month())), "[02]", two(t.Day()),
		"[15]", two(t.Hour()), "[04]", two(t.Minute()), "[05]", two(t.Second()),
		"[999]", fmt.Sprintf("%03d", t.Nanosecond()/int(time.Millisecond)),
		"[timestamp]", strconv.FormatInt(t.UnixMilli(), 10),
	)
	p := r.Replace(tp.raw)
	rel, err := filepath.Rel(tp.root, filepath.Clean(p))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w: %q is outside %q", errTraversal, p, tp.root)
	}
	return p, nil
}
