"""Serve a Rill plugin written in Python: the go-plugin handshake and services.

The core (bin/rill) launches a plugin through hashicorp/go-plugin. For a
plugin in another language that means (go-plugin's
docs/guide-plugin-write-non-go.md, and sdk/wire/handshake.go for Rill's
values):

  1. `PLUGIN --rill-describe` prints the plugin's Info as JSON and exits
     (the core asks it before the launch, to bind the plugin's sockets);
  2. otherwise the process must find the magic cookie in its environment
     (RILL_PLUGIN_COOKIE=9f1c3a52-rill-media-plugin-v1) and application
     protocol 1 in PLUGIN_PROTOCOL_VERSIONS, serve gRPC on a local address
     and print one line on stdout:  1|1|tcp|127.0.0.1:PORT|grpc
  3. the gRPC server carries grpc.health.v1.Health ("plugin" SERVING),
     plugin.GRPCBroker (the core announces brokered services on its
     StartStream stream: Rill's Host service, at the id StartRequest names),
     plugin.GRPCController (Shutdown) and plugin.GRPCStdio, and the plugin's
     own service, rill.plugin.v1.Plugin (sdk/proto/rill/plugin/v1/plugin.proto).

Logs go to stderr as JSON lines in go-hclog's format, which the core prints
under the plugin's name; stdout carries the handshake only.
"""

import datetime
import json
import os
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import empty_pb2

from gopluginpb import broker_pb2, health_pb2
from rill.plugin.v1 import plugin_pb2 as pb

COOKIE_KEY = "RILL_PLUGIN_COOKIE"
COOKIE_VALUE = "9f1c3a52-rill-media-plugin-v1"
APP_PROTOCOL_VERSION = 1  # sdk/wire.Handshake.ProtocolVersion
CORE_PROTOCOL_VERSION = 1  # go-plugin's own
API_VERSION = 1  # sdk/wire.APIVersion, answered in Describe
DESCRIBE_FLAG = "--rill-describe"

LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4}


class Logger:
    """go-hclog JSON lines on stderr: @level, @message, @timestamp, then key/values."""

    def __init__(self, fields=None, level=None, lock=None):
        if level is None:
            level = LEVELS.get(os.environ.get("RILL_LOG_LEVEL", "info").lower(), LEVELS["info"])
        self.level = level
        self.fields = dict(fields or {})
        self._lock = lock or threading.Lock()

    def with_(self, **kv):
        f = dict(self.fields)
        f.update(kv)
        return Logger(f, self.level, self._lock)

    def log(self, level, msg, **kv):
        if LEVELS[level] < self.level:
            return
        ts = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
        line = {"@level": level, "@message": msg, "@timestamp": ts}
        line.update(self.fields)
        line.update(kv)
        s = json.dumps(line, default=str)
        with self._lock:
            try:
                sys.stderr.write(s + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def debug(self, msg, **kv):
        self.log("debug", msg, **kv)

    def info(self, msg, **kv):
        self.log("info", msg, **kv)

    def warn(self, msg, **kv):
        self.log("warn", msg, **kv)

    def error(self, msg, **kv):
        self.log("error", msg, **kv)


class Abort(Exception):
    """Raised by a plugin method to answer with a gRPC status (code, message)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _unary(fn, req, resp):
    return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req.FromString,
                                               response_serializer=resp.SerializeToString)


class Broker:
    """The plugin side of go-plugin's GRPCBroker: remembers what the core announces."""

    def __init__(self, log, done):
        self._log = log
        self._done = done
        self._cond = threading.Condition()
        self._conns = {}

    def start_stream(self, request_iterator, context):
        def consume():
            try:
                for info in request_iterator:
                    with self._cond:
                        self._conns[info.service_id] = info
                        self._cond.notify_all()
            except grpc.RpcError:
                pass  # the core closed the stream
            finally:
                ended.set()

        ended = threading.Event()
        context.add_callback(ended.set)
        threading.Thread(target=consume, name="broker-recv", daemon=True).start()
        # Nothing to announce from this side: hold the response stream open
        # until the core ends it or the plugin shuts down.
        while not ended.wait(1.0) and not self._done.is_set():
            pass
        return
        yield  # a generator that sends nothing

    def dial(self, service_id, timeout):
        """A channel to the brokered service, once the core announced it."""
        with self._cond:
            if not self._cond.wait_for(lambda: service_id in self._conns, timeout):
                raise TimeoutError("broker service %d: no connection info from the core within %.0fs" % (service_id, timeout))
            info = self._conns[service_id]
        if info.network == "unix":
            target = "unix:" + info.address
        elif info.network == "tcp":
            target = info.address
        else:
            raise ValueError("broker service %d: network %r is not unix or tcp" % (service_id, info.network))
        ch = grpc.insecure_channel(target)
        grpc.channel_ready_future(ch).result(timeout=timeout)
        return ch


class Host:
    """A client of the core's rill.plugin.v1.Host service, through the broker."""

    def __init__(self, channel):
        self.channel = channel

        def m(name, req, resp):
            return channel.unary_unary("/rill.plugin.v1.Host/" + name, request_serializer=req.SerializeToString,
                                       response_deserializer=resp.FromString)

        self.Publish = m("Publish", pb.PublishRequest, pb.PublishResponse)
        self.Unpublish = m("Unpublish", pb.UnpublishRequest, pb.UnpublishResponse)
        self.Subscribe = m("Subscribe", pb.SubscribeRequest, pb.SubscribeResponse)
        self.Unsubscribe = m("Unsubscribe", pb.UnsubscribeRequest, pb.UnsubscribeResponse)
        self.ClientEvent = m("ClientEvent", pb.ClientEventRequest, pb.ClientEventResponse)
        self.Notify = m("Notify", pb.NotifyRequest, pb.NotifyResponse)

    def close(self):
        self.channel.close()


def serve(plugin, info):
    """Run plugin (an object with the Plugin service's methods) as a Rill plugin; never returns.

    info is the plugin's Info as the core expects it in JSON (sdk/wire.Info).
    Each method of plugin gets (request, context, runtime) where runtime is
    this module's Runtime.
    """
    if len(sys.argv) > 1 and sys.argv[1] == DESCRIBE_FLAG:
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        sys.exit(0)
    log = Logger({"@module": info["name"]})
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write("This binary is a plugin for Rill (bin/rill), not a program to run directly.\n")
        sys.exit(1)
    versions = [v.strip() for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", str(APP_PROTOCOL_VERSION)).split(",")]
    if str(APP_PROTOCOL_VERSION) not in versions:
        log.error("core speaks another plugin protocol", versions=",".join(versions), plugin_speaks=APP_PROTOCOL_VERSION)
        sys.exit(1)
    if os.environ.get("PLUGIN_CLIENT_CERT"):
        log.error("core asks for mTLS (AutoMTLS), which this plugin does not implement")
        sys.exit(1)
    Runtime(plugin, info, log).run()


class Runtime:
    """The plugin process: gRPC server, broker, lifecycle."""

    def __init__(self, plugin, info, log):
        self.plugin = plugin
        self.info = info
        self.log = log
        self.done = threading.Event()
        self.broker = Broker(log, self.done)
        self.server = None

    def run(self):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"))
        self.server.add_generic_rpc_handlers((self._plugin_handlers(), self._goplugin_handlers(), self._health_handlers()))
        port = self.server.add_insecure_port("127.0.0.1:0")
        if port == 0:
            self.log.error("cannot listen on 127.0.0.1 for the core")
            sys.exit(1)
        self.server.start()
        threading.Thread(target=self._watch_core, name="watch-core", daemon=True).start()
        sys.stdout.write("%d|%d|tcp|127.0.0.1:%d|grpc\n" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, port))
        sys.stdout.flush()
        self.done.wait()
        stop = getattr(self.plugin, "shutdown", None)
        if stop is not None:
            stop()
        self.server.stop(grace=1).wait(2)
        os._exit(0)

    def _watch_core(self):
        """Exit when the core that launched this process is gone."""
        try:
            core = int(os.environ.get("RILL_CORE_PID", "0"))
        except ValueError:
            return
        if core <= 1:
            return
        while not self.done.wait(0.5):
            if os.getppid() != core:
                self.log.error("core process is gone, exiting", core_pid=core)
                os._exit(3)

    def _call(self, name):
        fn = getattr(self.plugin, name)

        def handle(request, context):
            try:
                return fn(request, context, self)
            except Abort as a:
                context.abort(a.code, a.message)
            except Exception as e:  # a bug here must not end the process
                self.log.error("plugin method failed", method=name, error="%s: %s" % (type(e).__name__, e))
                context.abort(grpc.StatusCode.INTERNAL, "%s: %s: %s" % (name, type(e).__name__, e))

        return handle

    def _plugin_handlers(self):
        methods = {
            "Describe": (pb.DescribeRequest, pb.DescribeResponse),
            "Configure": (pb.ConfigureRequest, pb.ConfigureResponse),
            "Start": (pb.StartRequest, pb.StartResponse),
            "Stop": (pb.StopRequest, pb.StopResponse),
            "StreamEvent": (pb.StreamEventRequest, pb.StreamEventResponse),
            "Kick": (pb.KickRequest, pb.KickResponse),
            "ServeHTTP": (pb.HTTPRequest, pb.HTTPResponse),
            "Stats": (pb.StatsRequest, pb.StatsResponse),
        }
        return grpc.method_handlers_generic_handler("rill.plugin.v1.Plugin", {
            name: _unary(self._call(name), req, resp) for name, (req, resp) in methods.items()})

    def _goplugin_handlers(self):
        def shutdown(request, context):
            self.log.debug("shutdown requested by the core")
            threading.Timer(0.05, self.done.set).start()  # after this answer is sent
            return broker_pb2.Empty()

        def stdio(request, context):
            ended = threading.Event()
            context.add_callback(ended.set)
            while not ended.wait(1.0) and not self.done.is_set():
                pass
            return
            yield

        return _MultiServiceHandler({
            "/plugin.GRPCBroker/StartStream": grpc.stream_stream_rpc_method_handler(
                self.broker.start_stream, request_deserializer=broker_pb2.ConnInfo.FromString,
                response_serializer=broker_pb2.ConnInfo.SerializeToString),
            "/plugin.GRPCController/Shutdown": _unary(shutdown, broker_pb2.Empty, broker_pb2.Empty),
            "/plugin.GRPCStdio/StreamStdio": grpc.unary_stream_rpc_method_handler(
                stdio, request_deserializer=empty_pb2.Empty.FromString,
                response_serializer=broker_pb2.StdioData.SerializeToString),
        })

    def _health_handlers(self):
        serving = health_pb2.HealthCheckResponse.SERVING

        def check(request, context):
            if request.service not in ("", "plugin"):
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)
            return health_pb2.HealthCheckResponse(status=serving)

        def watch(request, context):
            yield health_pb2.HealthCheckResponse(status=serving)
            ended = threading.Event()
            context.add_callback(ended.set)
            while not ended.wait(1.0) and not self.done.is_set():
                pass

        return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": _unary(check, health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse),
            "Watch": grpc.unary_stream_rpc_method_handler(
                watch, request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString),
        })


class _MultiServiceHandler(grpc.GenericRpcHandler):
    """Handlers by full method name, across services."""

    def __init__(self, handlers):
        self._handlers = handlers

    def service(self, handler_call_details):
        return self._handlers.get(handler_call_details.method)
