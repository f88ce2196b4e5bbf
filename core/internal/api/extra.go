package api

import (
	"bytes"
	"crypto/subtle"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// withAuth wraps h with HTTP basic auth when a username is configured.
func (s *Server) withAuth(h http.Handler) http.Handler {
	if s.Username == "" {
		return h
	}
	user, pass := []byte(s.Username), []byte(s.Password)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), user) != 1 || subtle.ConstantTimeCompare([]byte(p), pass) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="rill"`)
			http.Error(w, "401 unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) sampled(w http.ResponseWriter, r *http.Request, data map[string]any) {
	data["ok"] = true
	data["sample_time"] = time.Now().UnixMilli()
	e := s.envelope(codeOK)
	e["data"] = data
	s.write(w, r, e)
}

func (s *Server) rusages(w http.ResponseWriter, r *http.Request) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s.sampled(w, r, map[string]any{
		"ru_utime": ru.Utime.Sec, "ru_stime": ru.Stime.Sec, // seconds, as SRS (tv_sec)
		"ru_maxrss": ru.Maxrss, "ru_ixrss": ru.Ixrss, "ru_idrss": ru.Idrss, "ru_isrss": ru.Isrss,
		"ru_minflt": ru.Minflt, "ru_majflt": ru.Majflt, "ru_nswap": ru.Nswap, "ru_inblock": ru.Inblock,
		"ru_oublock": ru.Oublock, "ru_msgsnd": ru.Msgsnd, "ru_msgrcv": ru.Msgrcv, "ru_nsignals": ru.Nsignals,
		"ru_nvcsw": ru.Nvcsw, "ru_nivcsw": ru.Nivcsw,
	})
}

// statFields are the /proc/[pid]/stat fields SRS reports, in order from
// field 3 (state).
var statFields = []string{"state", "ppid", "pgrp", "session", "tty_nr", "tpgid", "flags", "minflt", "cminflt",
	"majflt", "cmajflt", "utime", "stime", "cutime", "cstime", "priority", "nice", "num_threads", "itrealvalue",
	"starttime", "vsize", "rss", "rsslim", "startcode", "endcode", "startstack", "kstkesp", "kstkeip", "signal",
	"blocked", "sigignore", "sigcatch", "wchan", "nswap", "cnswap", "exit_signal", "processor", "rt_priority", "policy",
	"delayacct_blkio_ticks", "guest_time", "cguest_time"}

// selfStat parses /proc/self/stat as SRS's get_proc_self_stat does: comm
// keeps its parentheses, state is a string, every other field a number.
// Unsigned fields are written as SRS's int64 casts write them, so an
// unlimited rsslim (2^64-1) is -1.
func selfStat(b []byte) map[string]any {
	data := map[string]any{}
	i := bytes.LastIndexByte(b, ')')
	j := bytes.IndexByte(b, '(')
	if i < 0 || j < 0 || j > i {
		return data
	}
	data["comm"] = string(b[j : i+1])
	for k, f := range strings.Fields(string(b[i+1:])) {
		if k >= len(statFields) {
			break
		}
		if k == 0 {
			data[statFields[k]] = f
			continue
		}
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			data[statFields[k]] = n
		} else if u, err := strconv.ParseUint(f, 10, 64); err == nil {
			data[statFields[k]] = int64(u)
		} else {
			data[statFields[k]] = 0
		}
	}
	return data
}

func (s *Server) selfProcStats(w http.ResponseWriter, r *http.Request) {
	b, _ := os.ReadFile("/proc/self/stat")
	data := selfStat(b)
	data["pid"] = os.Getpid()
	selfPct, _ := s.proc.sample()
	data["percent"] = selfPct / 100
	s.sampled(w, r, data)
}

func (s *Server) systemProcStats(w http.ResponseWriter, r *http.Request) {
	_, sysPct := s.proc.sample()
	data := map[string]any{"percent": sysPct / 100}
	b, _ := os.ReadFile("/proc/stat")
	for k, v := range cpuCounters(b) {
		data[k] = v
	}
	s.sampled(w, r, data)
}

func (s *Server) meminfos(w http.ResponseWriter, r *http.Request) {
	mi := meminfo()
	ramPct, swapPct := 0.0, 0.0
	if t := mi["MemTotal"]; t > 0 {
		ramPct = float64(t-mi["MemAvailable"]) / float64(t)
	}
	if t := mi["SwapTotal"]; t > 0 {
		swapPct = float64(t-mi["SwapFree"]) / float64(t)
	}
	s.sampled(w, r, map[string]any{
		"percent_ram": ramPct, "percent_swap": swapPct, "MemActive": mi["Active"], "RealInUse": mi["MemTotal"] - mi["MemAvailable"],
		"NotInUse": mi["MemAvailable"], "MemTotal": mi["MemTotal"], "MemFree": mi["MemFree"], "Buffers": mi["Buffers"],
		"Cached": mi["Cached"], "SwapTotal": mi["SwapTotal"], "SwapFree": mi["SwapFree"],
	})
}

func (s *Server) features(w http.ResponseWriter, r *http.Request) {
	has := map[string]bool{}
	for _, n := range s.Plugins.Names() {
		has[n] = true
	}
	e := s.envelope(codeOK)
	e["data"] = map[string]any{
		"options": "", "options2": "", "build": "", "build2": "",
		"features": map[string]any{
			"ssl": s.HTTPS, "hls": has["hls"], "hds": false, "callback": true, "api": true, "httpd": has["hls"],
			"dvr": has["dvr"], "transcode": has["exec"], "ingest": has["exec"], "stat": true, "caster": has["gb28181"],
			"complex_send": true, "tcp_nodelay": true, "so_sendbuf": true, "mr": false,
		},
	}
	s.write(w, r, e)
}

func (s *Server) requests(w http.ResponseWriter, r *http.Request) {
	headers := map[string]any{}
	for k, v := range r.Header {
		if strings.EqualFold(k, "Authorization") {
			continue
		}
		headers[k] = strings.Join(v, ", ")
	}
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ", ")
	}
	server := map[string]any{"sigature": "Rill/" + s.Version, "version": s.Version, "link": "https://github.com/rill-media/rill", "time": time.Now().UnixMilli()}
	// SRS's SrsGoApiRequests sets data.headers twice, the second time to
	// the server information, so SRS tools read sigature, version, link and
	// time there; the request's own headers stay beside them.
	for k, v := range server {
		headers[k] = v
	}
	e := s.envelope(codeOK)
	e["data"] = map[string]any{
		"uri": r.URL.RequestURI(), "path": r.URL.Path, "METHOD": r.Method, "headers": headers, "query": query,
		"server": server,
	}
	s.write(w, r, e)
}

func (s *Server) authors(w http.ResponseWriter, r *http.Request) {
	e := s.envelope(codeOK)
	e["data"] = map[string]any{"license": "MIT", "contributors": "the Rill authors"}
	s.write(w, r, e)
}
