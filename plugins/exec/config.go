package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// Defaults of the plugin block.
const (
	defaultFFmpeg      = "ffmpeg"
	defaultRTMP        = "127.0.0.1:1935"
	defaultLogDir      = "./objs/exec"
	defaultLogMaxBytes = 8 << 20
	defaultBackoffMin  = time.Second
	defaultBackoffMax  = 30 * time.Second
	defaultKillTimeout = 1500 * time.Millisecond
	defaultLogLevel    = "warning"

	// defaultIngestOutput and defaultTranscodeOutput are the output
	// templates when an engine names none. [rtmp] is the plugin's rtmp key.
	defaultIngestOutput    = "rtmp://[rtmp]/[app]/[stream]?vhost=[vhost]"
	defaultTranscodeOutput = "rtmp://[rtmp]/[app]/[stream]_[engine]?vhost=[vhost]"

	// transcodeMark is the query parameter added to every RTMP output of a
	// transcode engine: a stream published with it is never transcoded
	// again, so an output cannot re-trigger its own transcode.
	transcodeMark = "rill_transcode"
)

// pluginSettings is the plugin "exec" {} block.
type pluginSettings struct {
	// FFmpeg is the ffmpeg binary for ingest and transcode (PATH lookup).
	FFmpeg string `json:"ffmpeg"`
	// RTMP is the address of the rtmp plugin's listener: ingest publishes
	// and transcode plays and publishes there. It must match plugin "rtmp"
	// { listen = [...] }.
	RTMP string `json:"rtmp"`
	// LogDir holds one log file per child (stdout and stderr) and the pid
	// file of the running children.
	LogDir string `json:"log_dir"`
	// LogMaxBytes caps a child's log file; past it the file is renamed to
	// .1 (replacing the previous one) and a new one is started.
	LogMaxBytes int64 `json:"log_max_bytes"`
	// BackoffMin and BackoffMax bound the restart delay of a child that died
	// while still needed: it doubles from min to max, and starts at min
	// again once a child ran for BackoffMax.
	BackoffMin sdk.Duration `json:"backoff_min"`
	BackoffMax sdk.Duration `json:"backoff_max"`
	// KillTimeout is how long a child has between SIGTERM and SIGKILL.
	KillTimeout sdk.Duration `json:"kill_timeout"`
	// FFmpegLogLevel is passed to ffmpeg as -loglevel.
	FFmpegLogLevel string `json:"ffmpeg_loglevel"`
}

// vhostSettings is the exec {} block of a vhost.
type vhostSettings struct {
	Enabled *bool `json:"enabled"`
	// Publish lists the programs started when a stream of the vhost is
	// published and stopped when it is unpublished (SRS exec.publish,
	// nginx-rtmp exec_publish).
	Publish []string `json:"publish"`
	// Respawn says when a publish program that exited is started again:
	// "on-failure" (default: non-zero exit or a signal), "always", "never".
	Respawn   string                    `json:"respawn"`
	Ingest    map[string]ingestSettings `json:"ingest"`
	Transcode *transcodeSettings        `json:"transcode"`
}

// ingestSettings is one ingest "name" {} block (SRS vhost.ingest).
type ingestSettings struct {
	Enabled *bool  `json:"enabled"`
	Input   string `json:"input"` // file | stream | device
	URL     string `json:"url"`
	// IFormat is ffmpeg's -f for the input (required for a device:
	// "v4l2", "alsa", "lavfi", ...).
	IFormat string   `json:"iformat"`
	IParams []string `json:"iparams"` // more input options, before -i
	// App and Stream name the published stream: "live" and the ingest's
	// name by default.
	App    string          `json:"app"`
	Stream string          `json:"stream"`
	FFmpeg string          `json:"ffmpeg"`
	Engine *engineSettings `json:"engine"`
}

// transcodeSettings is the transcode {} block of a vhost.
type transcodeSettings struct {
	Enabled *bool `json:"enabled"`
	// Apply lists "app/stream" glob patterns (path.Match) of the streams to
	// transcode; empty means every stream.
	Apply  []string                  `json:"apply"`
	FFmpeg string                    `json:"ffmpeg"`
	Engine map[string]engineSettings `json:"engine"`
}

// engineSettings is an engine block: SRS's transcode engine keys.
type engineSettings struct {
	// Enabled = false: a transcode engine does not run; an ingest engine
	// copies the streams as they are (SRS).
	Enabled     *bool    `json:"enabled"`
	VCodec      string   `json:"vcodec"` // "copy", "vn" (no video) or an encoder
	VBitrate    int      `json:"vbitrate"`
	VFps        float64  `json:"vfps"`
	VWidth      int      `json:"vwidth"`
	VHeight     int      `json:"vheight"`
	VThreads    int      `json:"vthreads"`
	VProfile    string   `json:"vprofile"`
	VPreset     string   `json:"vpreset"`
	VParams     []string `json:"vparams"`
	ACodec      string   `json:"acodec"` // "copy", "an" (no audio) or an encoder
	ABitrate    int      `json:"abitrate"`
	ASampleRate int      `json:"asample_rate"`
	AChannels   int      `json:"achannels"`
	AParams     []string `json:"aparams"`
	OFormat     string   `json:"oformat"`
	Output      string   `json:"output"`
}

// config is the validated configuration of the whole plugin.
type config struct {
	ffmpeg      string
	rtmp        string
	rtmpPort    string
	logDir      string
	logMaxBytes int64
	backoffMin  time.Duration
	backoffMax  time.Duration
	killTimeout time.Duration
	logLevel    string
	vhosts      map[string]*vhostConfig
}

// vhostConfig is a vhost's validated exec configuration.
type vhostConfig struct {
	name      string
	publish   []publishCommand
	respawn   respawn
	ingests   []childSpec // fixed argv: they run while the config says so
	transcode *transcodeConfig
}

type publishCommand struct {
	id   string // short hash of the template: a child's identity
	argv []string
}

type transcodeConfig struct {
	apply   []string
	ffmpeg  string
	engines []engineConfig // sorted by name
}

type engineConfig struct {
	name string
	s    engineSettings
}

// parseConfig validates the plugin block and every vhost's exec block.
func parseConfig(cfg sdk.Config) (*config, error) {
	var ps pluginSettings
	if err := cfg.DecodeSettings(&ps); err != nil {
		return nil, err
	}
	bad := func(key, format string, args ...any) error {
		return &sdk.ConfigError{Key: []string{key}, Msg: fmt.Sprintf(format, args...)}
	}
	c := &config{
		ffmpeg: ps.FFmpeg, rtmp: ps.RTMP, logDir: ps.LogDir, logMaxBytes: ps.LogMaxBytes,
		backoffMin: ps.BackoffMin.Std(), backoffMax: ps.BackoffMax.Std(), killTimeout: ps.KillTimeout.Std(),
		logLevel: ps.FFmpegLogLevel, vhosts: map[string]*vhostConfig{},
	}
	var errs []error
	if c.ffmpeg == "" {
		c.ffmpeg = defaultFFmpeg
	}
	if c.rtmp == "" {
		c.rtmp = defaultRTMP
	}
	host, port, err := net.SplitHostPort(c.rtmp)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n <= 0 || n > 65535 {
		errs = append(errs, bad("rtmp", "want host:port of the rtmp plugin's listener, got %q", c.rtmp))
	} else if host == "0.0.0.0" || host == "::" {
		errs = append(errs, bad("rtmp", "%q is a wildcard: give an address to connect to, such as 127.0.0.1:%s", c.rtmp, port))
	}
	c.rtmpPort = port
	if c.logDir == "" {
		c.logDir = defaultLogDir
	}
	switch {
	case c.logMaxBytes == 0:
		c.logMaxBytes = defaultLogMaxBytes
	case c.logMaxBytes < 4096:
		errs = append(errs, bad("log_max_bytes", "want at least 4096, got %d", c.logMaxBytes))
	}
	if c.backoffMin == 0 {
		c.backoffMin = defaultBackoffMin
	}
	if c.backoffMax == 0 {
		c.backoffMax = max(defaultBackoffMax, c.backoffMin)
	}
	if c.backoffMax < c.backoffMin {
		errs = append(errs, bad("backoff_max", "must not be less than backoff_min"))
	}
	if c.killTimeout == 0 {
		c.killTimeout = defaultKillTimeout
	}
	if c.logLevel == "" {
		c.logLevel = defaultLogLevel
	}
	if !isName(c.logLevel) {
		errs = append(errs, bad("ffmpeg_loglevel", "bad level %q", c.logLevel))
	}
	needFFmpeg := map[string]bool{}
	for _, vc := range cfg.Vhosts {
		v, need, err := parseVhost(c, vc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v != nil {
			c.vhosts[vc.Name] = v
		}
		for _, f := range need {
			needFFmpeg[f] = true
		}
	}
	// A missing ffmpeg is the operator's to fix, and better said now than
	// by a child that fails to start every 30 s.
	for _, f := range sortedKeys(needFFmpeg) {
		if _, err := exec.LookPath(f); err != nil {
			errs = append(errs, bad("ffmpeg", "%q: %v", f, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// parseVhost validates one vhost's block. It returns nil for a vhost where
// the plugin is off, and the ffmpeg binaries the vhost needs.
func parseVhost(c *config, vc sdk.VhostConfig) (*vhostConfig, []string, error) {
	var s vhostSettings
	if err := vc.Decode(&s); err != nil {
		return nil, nil, err
	}
	if !vc.Enabled || (s.Enabled != nil && !*s.Enabled) {
		return nil, nil, nil
	}
	bad := func(key []string, format string, args ...any) error {
		return &sdk.ConfigError{Vhost: vc.Name, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	v := &vhostConfig{name: vc.Name}
	var errs []error
	var need []string
	switch s.Respawn {
	case "", "on-failure":
		v.respawn = respawnOnFailure
	case "always":
		v.respawn = respawnAlways
	case "never":
		v.respawn = respawnNever
	default:
		errs = append(errs, bad([]string{"respawn"}, `want "on-failure", "always" or "never", got %q`, s.Respawn))
	}
	seen := map[string]bool{}
	for i, line := range s.Publish {
		argv, err := splitCommand(line)
		if err != nil {
			errs = append(errs, bad([]string{"publish", strconv.Itoa(i)}, "%v in %q", err, line))
			continue
		}
		// The program itself is the operator's: no placeholder in it.
		if strings.ContainsRune(argv[0], '[') {
			errs = append(errs, bad([]string{"publish", strconv.Itoa(i)}, "the program %q must not contain a placeholder", argv[0]))
			continue
		}
		id := shortHash(line)
		if seen[id] {
			errs = append(errs, bad([]string{"publish", strconv.Itoa(i)}, "duplicate command %q", line))
			continue
		}
		seen[id] = true
		v.publish = append(v.publish, publishCommand{id: id, argv: argv})
	}
	for _, name := range sortedKeys(s.Ingest) {
		spec, ff, err := buildIngest(c, vc.Name, name, s.Ingest[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if spec != nil {
			v.ingests = append(v.ingests, *spec)
			need = append(need, ff)
		}
	}
	if t := s.Transcode; t != nil && (t.Enabled == nil || *t.Enabled) {
		tc := &transcodeConfig{apply: t.Apply, ffmpeg: t.FFmpeg}
		if tc.ffmpeg == "" {
			tc.ffmpeg = c.ffmpeg
		}
		for i, p := range t.Apply {
			if _, err := path.Match(p, "app/stream"); err != nil || !strings.Contains(p, "/") {
				errs = append(errs, bad([]string{"transcode", "apply", strconv.Itoa(i)}, `want an "app/stream" glob pattern, got %q`, p))
			}
		}
		for _, name := range sortedKeys(t.Engine) {
			e := t.Engine[name]
			key := []string{"transcode", "engine", name}
			if !isName(name) || strings.Contains(name, ".") {
				errs = append(errs, bad(key, "engine name %q: want letters, digits, '_' or '-'", name))
				continue
			}
			if e.Enabled != nil && !*e.Enabled {
				continue
			}
			if err := checkEngine(e, key, vc.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			tc.engines = append(tc.engines, engineConfig{name: name, s: e})
		}
		if len(tc.engines) > 0 {
			v.transcode = tc
			need = append(need, tc.ffmpeg)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return v, need, nil
}

// buildIngest validates an ingest block and renders its command.
func buildIngest(c *config, vhost, name string, s ingestSettings) (*childSpec, string, error) {
	key := []string{"ingest", name}
	bad := func(k, format string, args ...any) error {
		kp := append(append([]string(nil), key...), k)
		if k == "" {
			kp = key
		}
		return &sdk.ConfigError{Vhost: vhost, Key: kp, Msg: fmt.Sprintf(format, args...)}
	}
	if !isName(name) {
		return nil, "", bad("", "ingest name %q: want letters, digits, '.', '_', '~' or '-'", name)
	}
	if s.Enabled != nil && !*s.Enabled {
		return nil, "", nil
	}
	app, stream := s.App, s.Stream
	if app == "" {
		app = "live"
	}
	if stream == "" {
		stream = name
	}
	if err := safeValue("app", app); err != nil {
		return nil, "", bad("app", "%v", err)
	}
	if err := safeValue("stream", stream); err != nil {
		return nil, "", bad("stream", "%v", err)
	}
	if s.URL == "" {
		return nil, "", bad("url", "missing")
	}
	if strings.HasPrefix(s.URL, "-") || strings.ContainsAny(s.URL, "\x00\n\r") {
		return nil, "", bad("url", "bad url %q", s.URL)
	}
	ffmpeg := s.FFmpeg
	if ffmpeg == "" {
		ffmpeg = c.ffmpeg
	}
	argv := []string{ffmpeg, "-hide_banner", "-nostdin", "-loglevel", c.logLevel}
	switch s.Input {
	case "file":
		argv = append(argv, "-re", "-stream_loop", "-1")
	case "stream":
	case "device":
		if s.IFormat == "" {
			return nil, "", bad("iformat", `a device needs its input format ("v4l2", "alsa", "lavfi", ...)`)
		}
	case "":
		return nil, "", bad("input", `missing: want "file", "stream" or "device"`)
	default:
		return nil, "", bad("input", `want "file", "stream" or "device", got %q`, s.Input)
	}
	if s.IFormat != "" {
		if !isName(s.IFormat) {
			return nil, "", bad("iformat", "bad format %q", s.IFormat)
		}
		argv = append(argv, "-f", s.IFormat)
	}
	argv = append(argv, s.IParams...)
	argv = append(argv, "-i", s.URL)
	e := engineSettings{}
	if s.Engine != nil {
		e = *s.Engine
		if err := checkEngine(e, append(key, "engine"), vhost); err != nil {
			return nil, "", err
		}
	}
	copyAll := s.Engine == nil || (e.Enabled != nil && !*e.Enabled)
	out := e.Output
	if out == "" {
		out = defaultIngestOutput
	}
	v := vars{"vhost": vhost, "app": app, "stream": stream, "engine": name, "rtmp": c.rtmp, "port": c.rtmpPort}
	args, err := engineArgs(e, copyAll, out, v, "")
	if err != nil {
		return nil, "", bad("engine", "%v", err)
	}
	argv = append(argv, args...)
	spec := &childSpec{
		key:     "ingest/" + vhost + "/" + name,
		kind:    kindIngest,
		argv:    argv,
		respawn: respawnAlways,
		logName: fileName("ingest", vhost, name),
	}
	return spec, ffmpeg, nil
}

// checkEngine validates the keys of an engine block that no template check
// covers.
func checkEngine(e engineSettings, key []string, vhost string) error {
	var errs []error
	bad := func(k, format string, args ...any) {
		kp := append(append([]string(nil), key...), k)
		errs = append(errs, &sdk.ConfigError{Vhost: vhost, Key: kp, Msg: fmt.Sprintf(format, args...)})
	}
	for k, v := range map[string]string{"vcodec": e.VCodec, "vprofile": e.VProfile, "vpreset": e.VPreset, "acodec": e.ACodec, "oformat": e.OFormat} {
		if v != "" && !isName(v) {
			bad(k, "bad value %q", v)
		}
	}
	for k, n := range map[string]int{"vbitrate": e.VBitrate, "vwidth": e.VWidth, "vheight": e.VHeight, "vthreads": e.VThreads,
		"abitrate": e.ABitrate, "asample_rate": e.ASampleRate, "achannels": e.AChannels} {
		if n < 0 {
			bad(k, "must not be negative")
		}
	}
	if e.VFps < 0 {
		bad("vfps", "must not be negative")
	}
	if e.Output != "" {
		if _, err := splitCommand(e.Output); err != nil || strings.ContainsAny(e.Output, " \t\n\r") || strings.HasPrefix(e.Output, "-") {
			bad("output", "want one URL or path template, got %q", e.Output)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// engineArgs renders the output half of an ffmpeg command: codecs and their
// parameters, the format and the output (template expanded with v). mark,
// when set, is added to an RTMP output's query as rill_transcode=mark.
func engineArgs(e engineSettings, copyAll bool, outTmpl string, v vars, mark string) ([]string, error) {
	var a []string
	if copyAll {
		a = append(a, "-c", "copy")
	} else {
		switch e.VCodec {
		case "", "copy":
			a = append(a, "-c:v", "copy")
		case "vn":
			a = append(a, "-vn")
		default:
			a = append(a, "-c:v", e.VCodec)
			if e.VBitrate > 0 {
				a = append(a, "-b:v", fmt.Sprintf("%dk", e.VBitrate))
			}
			if e.VFps > 0 {
				a = append(a, "-r", strconv.FormatFloat(e.VFps, 'f', -1, 64))
			}
			switch {
			case e.VWidth > 0 && e.VHeight > 0:
				a = append(a, "-vf", fmt.Sprintf("scale=%d:%d", e.VWidth, e.VHeight))
			case e.VWidth > 0:
				a = append(a, "-vf", fmt.Sprintf("scale=%d:-2", e.VWidth))
			case e.VHeight > 0:
				a = append(a, "-vf", fmt.Sprintf("scale=-2:%d", e.VHeight))
			}
			if e.VThreads > 0 {
				a = append(a, "-threads", strconv.Itoa(e.VThreads))
			}
			if e.VProfile != "" {
				a = append(a, "-profile:v", e.VProfile)
			}
			if e.VPreset != "" {
				a = append(a, "-preset", e.VPreset)
			}
			a = append(a, e.VParams...)
		}
		switch e.ACodec {
		case "", "copy":
			a = append(a, "-c:a", "copy")
		case "an":
			a = append(a, "-an")
		default:
			a = append(a, "-c:a", e.ACodec)
			if e.ABitrate > 0 {
				a = append(a, "-b:a", fmt.Sprintf("%dk", e.ABitrate))
			}
			if e.ASampleRate > 0 {
				a = append(a, "-ar", strconv.Itoa(e.ASampleRate))
			}
			if e.AChannels > 0 {
				a = append(a, "-ac", strconv.Itoa(e.AChannels))
			}
			a = append(a, e.AParams...)
		}
	}
	out, err := expand(outTmpl, v)
	if err != nil {
		return nil, err
	}
	isRTMP := strings.HasPrefix(out, "rtmp://") || strings.HasPrefix(out, "rtmps://")
	if mark != "" && isRTMP {
		sep := "?"
		if strings.Contains(out, "?") {
			sep = "&"
		}
		out += sep + transcodeMark + "=" + mark
	}
	switch {
	case e.OFormat != "":
		a = append(a, "-f", e.OFormat)
	case isRTMP:
		a = append(a, "-f", "flv")
	}
	return append(a, out), nil
}

// transcodes reports whether the vhost's transcode applies to ref: the
// stream matches apply and is no transcode output (it carries the mark, or
// its name ends with _<engine> of one of the vhost's engines).
func (t *transcodeConfig) transcodes(ref sdk.StreamRef) bool {
	if t == nil || strings.Contains(ref.Param, transcodeMark+"=") {
		return false
	}
	for _, e := range t.engines {
		if strings.HasSuffix(ref.Stream, "_"+e.name) {
			return false
		}
	}
	if len(t.apply) == 0 {
		return true
	}
	for _, p := range t.apply {
		if ok, _ := path.Match(p, ref.App+"/"+ref.Stream); ok {
			return true
		}
	}
	return false
}

// streamVars are the placeholders of a published stream.
func (c *config) streamVars(ref sdk.StreamRef) vars {
	return vars{
		"vhost": ref.Vhost, "app": ref.App, "stream": ref.Stream, "param": ref.Param,
		"rtmp": c.rtmp, "port": c.rtmpPort,
		"url": c.streamURL(ref),
	}
}

// streamURL is where a child plays ref from the rtmp plugin.
func (c *config) streamURL(ref sdk.StreamRef) string {
	return "rtmp://" + c.rtmp + "/" + ref.App + "/" + ref.Stream + "?vhost=" + ref.Vhost
}

// transcodeSpec renders engine e of t for the published stream ref.
func (c *config) transcodeSpec(t *transcodeConfig, e engineConfig, ref sdk.StreamRef) (childSpec, error) {
	v := c.streamVars(ref)
	v["engine"] = e.name
	for _, name := range []string{"vhost", "app", "stream"} {
		if err := safeValue(name, v[name]); err != nil {
			return childSpec{}, err
		}
	}
	argv := []string{t.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", c.logLevel, "-i", c.streamURL(ref)}
	out := e.s.Output
	if out == "" {
		out = defaultTranscodeOutput
	}
	args, err := engineArgs(e.s, false, out, v, e.name)
	if err != nil {
		return childSpec{}, err
	}
	return childSpec{
		key:     "transcode/" + ref.Key() + "/" + e.name,
		kind:    kindTranscode,
		argv:    append(argv, args...),
		respawn: respawnAlways,
		logName: fileName("transcode", ref.Vhost, ref.App, ref.Stream, e.name),
	}, nil
}

// publishSpec renders a publish command for the published stream ref.
func (c *config) publishSpec(v *vhostConfig, p publishCommand, ref sdk.StreamRef) (childSpec, error) {
	argv, err := expandArgs(p.argv, c.streamVars(ref))
	if err != nil {
		return childSpec{}, err
	}
	return childSpec{
		key:     "exec/" + ref.Key() + "/" + p.id,
		kind:    kindExec,
		argv:    argv,
		respawn: v.respawn,
		logName: fileName("exec", ref.Vhost, ref.App, ref.Stream, p.id),
	}, nil
}

// fileName makes a log file name of parts: anything outside the name
// characters becomes '_'.
func fileName(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		for j := 0; j < len(p); j++ {
			if c := p[j]; isNameByte(c) && c != '~' {
				b.WriteByte(c)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String() + ".log"
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
