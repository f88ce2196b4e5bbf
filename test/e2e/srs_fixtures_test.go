package e2e

// Example answers and callback bodies of SRS 7.0.18, written from SRS's
// source (trunk/src/app/srs_app_http_api.cpp, srs_app_statistic.cpp,
// srs_app_utility.cpp srs_api_dump_summaries, srs_app_http_hooks.cpp) and
// SRS's documentation of the HTTP API and callbacks. Only the key paths and the JSON
// kinds matter: an integer literal is SrsJsonAny::integer, a literal with a
// decimal point SrsJsonAny::number. Values are placeholders.

const srsEnvelope = `"code":0,"server":"vid-0","service":"svc","pid":"1"`

var srsRoot = `{` + srsEnvelope + `,"urls":{"api":"the api root","rtc":{"v1":{"play":"Play stream","publish":"Publish stream","nack":"Simulate the NACK"}}}}`

var srsAPI = `{` + srsEnvelope + `,"urls":{"v1":"the api version 1.0"}}`

var srsV1 = `{` + srsEnvelope + `,"urls":{"versions":"","summaries":"","rusages":"","self_proc_stats":"","system_proc_stats":"",
"meminfos":"","authors":"","features":"","requests":"","vhosts":"","streams":"","clients":"","raw":"","clusters":"","perf":"","tcmalloc":""},
"tests":{"requests":"","errors":"","redirects":"","[vhost]":""}}`

var srsVersions = `{` + srsEnvelope + `,"data":{"major":7,"minor":0,"revision":18,"version":"7.0.18"}}`

var srsSummaries = `{` + srsEnvelope + `,"data":{"ok":true,"now_ms":1,
"self":{"version":"7.0.18","pid":1,"ppid":1,"argv":"","cwd":"","mem_kbyte":1,"mem_percent":0.1,"cpu_percent":0.1,"srs_uptime":1},
"system":{"cpu_percent":0.1,"disk_read_KBps":1,"disk_write_KBps":1,"disk_busy_percent":0.1,"mem_ram_kbyte":1,"mem_ram_percent":0.1,
"mem_swap_kbyte":1,"mem_swap_percent":0.1,"cpus":1,"cpus_online":1,"uptime":0.1,"ilde_time":0.1,"load_1m":0.1,"load_5m":0.1,"load_15m":0.1,
"net_sample_time":1,"net_recv_bytes":1,"net_send_bytes":1,"net_recvi_bytes":1,"net_sendi_bytes":1,"srs_sample_time":1,"srs_recv_bytes":1,
"srs_send_bytes":1,"conn_sys":1,"conn_sys_et":1,"conn_sys_tw":1,"conn_sys_udp":1,"conn_srs":1}}}`

var srsRusages = `{` + srsEnvelope + `,"data":{"ok":true,"sample_time":1,"ru_utime":1,"ru_stime":1,"ru_maxrss":1,"ru_ixrss":1,"ru_idrss":1,
"ru_isrss":1,"ru_minflt":1,"ru_majflt":1,"ru_nswap":1,"ru_inblock":1,"ru_oublock":1,"ru_msgsnd":1,"ru_msgrcv":1,"ru_nsignals":1,"ru_nvcsw":1,"ru_nivcsw":1}}`

var srsSelfProcStats = `{` + srsEnvelope + `,"data":{"ok":true,"sample_time":1,"percent":0.1,"pid":1,"comm":"(srs)","state":"S","ppid":1,
"pgrp":1,"session":1,"tty_nr":1,"tpgid":1,"flags":1,"minflt":1,"cminflt":1,"majflt":1,"cmajflt":1,"utime":1,"stime":1,"cutime":1,"cstime":1,
"priority":1,"nice":1,"num_threads":1,"itrealvalue":1,"starttime":1,"vsize":1,"rss":1,"rsslim":-1,"startcode":1,"endcode":1,"startstack":1,
"kstkesp":1,"kstkeip":1,"signal":1,"blocked":1,"sigignore":1,"sigcatch":1,"wchan":1,"nswap":1,"cnswap":1,"exit_signal":1,"processor":1,
"rt_priority":1,"policy":1,"delayacct_blkio_ticks":1,"guest_time":1,"cguest_time":1}}`

var srsSystemProcStats = `{` + srsEnvelope + `,"data":{"ok":true,"sample_time":1,"percent":0.1,"user":1,"nice":1,"sys":1,"idle":1,
"iowait":1,"irq":1,"softirq":1,"steal":1,"guest":1}}`

var srsMeminfos = `{` + srsEnvelope + `,"data":{"ok":true,"sample_time":1,"percent_ram":0.1,"percent_swap":0.1,"MemActive":1,"RealInUse":1,
"NotInUse":1,"MemTotal":1,"MemFree":1,"Buffers":1,"Cached":1,"SwapTotal":1,"SwapFree":1}}`

var srsAuthors = `{` + srsEnvelope + `,"data":{"license":"MIT","contributors":""}}`

var srsFeatures = `{` + srsEnvelope + `,"data":{"options":"","options2":"","build":"","build2":"","features":{"ssl":true,"hls":true,
"hds":false,"callback":true,"api":true,"httpd":true,"dvr":true,"transcode":true,"ingest":true,"stat":true,"caster":true,"complex_send":true,
"tcp_nodelay":false,"so_sendbuf":false,"mr":false}}}`

// SrsGoApiRequests sets data.headers twice; the second, the server's
// information, is what SRS answers.
var srsTestsRequests = `{` + srsEnvelope + `,"data":{"uri":"/api/v1/tests/requests","path":"/api/v1/tests/requests","METHOD":"GET",
"headers":{"sigature":"SRS","version":"7.0.18","link":"","time":1}}}`

const srsTestsErrors = `{"code":100}`

var srsVhost = `{"id":"vid-0","name":"__defaultVhost__","enabled":true,"clients":1,"streams":1,"send_bytes":1,"recv_bytes":1,
"kbps":{"recv_30s":1,"send_30s":1},"hls":{"enabled":true,"fragment":2.00}}`

var srsVhosts = `{` + srsEnvelope + `,"vhosts":[` + srsVhost + `]}`

var srsOneVhost = `{` + srsEnvelope + `,"vhost":` + srsVhost + `}`

var srsStream = `{"id":"vid-0","name":"livestream","vhost":"vid-0","app":"live","tcUrl":"rtmp://127.0.0.1/live","url":"/live/livestream",
"live_ms":1,"clients":1,"frames":1,"send_bytes":1,"recv_bytes":1,"kbps":{"recv_30s":1,"send_30s":1},"publish":{"active":true,"cid":"x"},
"video":{"codec":"H264","profile":"High","level":"3","width":640,"height":360},"audio":{"codec":"AAC","sample_rate":44100,"channel":2,"profile":"LC"}}`

var srsStreams = `{` + srsEnvelope + `,"streams":[` + srsStream + `]}`

var srsOneStream = `{` + srsEnvelope + `,"stream":` + srsStream + `}`

var srsClient = `{"id":"x","vhost":"vid-0","stream":"vid-0","ip":"127.0.0.1","pageUrl":"","swfUrl":"","tcUrl":"rtmp://127.0.0.1/live",
"url":"/live/livestream","name":"livestream","type":"fmle-publish","publish":true,"alive":0.1,"send_bytes":1,"recv_bytes":1,
"kbps":{"recv_30s":1,"send_30s":1}}`

var srsClients = `{` + srsEnvelope + `,"clients":[` + srsClient + `]}`

var srsOneClient = `{` + srsEnvelope + `,"client":` + srsClient + `}`

var srsKick = `{` + srsEnvelope + `}`

// Callback bodies (SrsHttpHooks::on_*).
const srsHookBase = `"server_id":"vid-0","service_id":"svc","client_id":"x","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live"`

var srsOnConnect = `{` + srsHookBase + `,"action":"on_connect","stream":"livestream","param":"?token=x","tcUrl":"rtmp://127.0.0.1/live","pageUrl":""}`

var srsOnClose = `{` + srsHookBase + `,"action":"on_close","send_bytes":1,"recv_bytes":1}`

var srsOnPublish = `{` + srsHookBase + `,"action":"on_publish","tcUrl":"rtmp://127.0.0.1/live","stream":"livestream","param":"?token=x",
"stream_url":"/live/livestream","stream_id":"vid-0"}`

var srsOnUnpublish = `{` + srsHookBase + `,"action":"on_unpublish","tcUrl":"rtmp://127.0.0.1/live","stream":"livestream","param":"?token=x",
"stream_url":"/live/livestream","stream_id":"vid-0"}`

var srsOnPlay = `{` + srsHookBase + `,"action":"on_play","stream":"livestream","tcUrl":"rtmp://127.0.0.1/live","param":"?k=v","pageUrl":"",
"stream_url":"/live/livestream","stream_id":"vid-0"}`

var srsOnStop = `{` + srsHookBase + `,"action":"on_stop","tcUrl":"rtmp://127.0.0.1/live","stream":"livestream","param":"?k=v",
"stream_url":"/live/livestream","stream_id":"vid-0"}`

var srsOnHls = `{` + srsHookBase + `,"action":"on_hls","tcUrl":"rtmp://127.0.0.1/live","stream":"livestream","param":"?token=x",
"duration":2.0,"cwd":"/","file":"./objs/nginx/html/live/livestream-1.ts","url":"live/livestream-1.ts","m3u8":"./objs/nginx/html/live/livestream.m3u8",
"m3u8_url":"live/livestream.m3u8","seq_no":1,"stream_url":"/live/livestream","stream_id":"vid-0"}`
