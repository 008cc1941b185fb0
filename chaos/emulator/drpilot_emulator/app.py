"""The WSGI middleware in front of moto's DomainDispatcherApplication.

For every request it works out the service and Region (from the SigV4 credential
scope) and the operation, applies the fault layer, then either answers with one of our
extensions (operations moto lacks or gets wrong, served through moto's own
botocore-model-driven parser and serializer) or hands the request to moto, optionally
post-processing moto's answer. `/_drpilot/...` is the control API (see README.md).
"""

from __future__ import annotations

import io
import json
import re
import select
import socket
import struct
import time
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from moto.core.request import Request as MotoRequest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

from . import cbor_bridge
from . import faults as faultmod
from .core import Emulator
from .ext.base import HttpError
from .iam_enforce import Enforcer
from .sigv4 import scope_from_environ, scope_from_headers
from .wsgi import read_body

QUERY_SERVICES = {"rds", "elasticache", "monitoring", "sts", "ec2", "iam", "sns", "sqs", "cloudformation"}
BOTO3_NAMES = {"monitoring": "cloudwatch", "s3": "s3", "route53": "route53"}
# restJson1 services routed by method and path through their botocore model (moto's
# generic router works for any model, even of a service moto does not implement).
REST_JSON_SERVICES = {"route53-recovery-control-config"}


class EmuRequest(MotoRequest):
    """A moto Request that says it came from a real WSGI server (as Flask's would)."""

    from_wsgi_server = True


@dataclass
class Ctx:
    service: str | None
    region: str | None
    operation: str | None
    protocol: str | None  # query | json | rest-xml | rest-json | cbor
    uri_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def dispatch_response_class(cls: type, environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    """Serve a request with a moto BaseResponse subclass (parsing and serialising
    through botocore's service model, exactly as moto does for its own operations)."""
    request = EmuRequest(environ)
    status, headers, body = cls.dispatch(request, request.raw_url, dict(request.headers))
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    out: list[tuple[str, str]] = []
    for k, v in (headers or {}).items():
        if k.lower() in ("status", "content-length"):
            continue
        out.append((k, str(v)))
    if not any(k.lower() == "content-type" for k, _ in out):
        out.append(("Content-Type", "text/xml"))
    return int(status), out, body


class EmulatorApp:
    def __init__(self, emu: Emulator | None = None) -> None:
        from .ext import all_extensions

        self.emu = emu or Emulator()
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.faults = faultmod.FaultLayer(self.emu)
        self.iam = Enforcer(self.emu)
        self.emu.faults = self.faults
        self.extensions = all_extensions(self.emu)
        self.emu.extensions = self.extensions
        self.by_service: dict[str, list[Any]] = {}
        for ext in self.extensions:
            for service in ext.services:
                self.by_service.setdefault(service, []).append(ext)
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = []
        self._install_routes()
        self.emu.start_ticker()

    # ------------------------------------------------------------------ classify
    def classify(self, environ: dict) -> Ctx:
        scope = scope_from_environ(environ)
        service, region = scope if scope else (None, None)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        ctx = Ctx(service=service, region=region, operation=None, protocol=None, query=query)
        if service is None:
            return ctx
        ctype = environ.get("CONTENT_TYPE", "") or ""
        if service in ("s3", "route53"):
            ctx.protocol = "rest-xml"
            try:
                from moto.core.routing import get_service_router

                op, params = get_service_router(BOTO3_NAMES[service]).match(EmuRequest(environ))
                ctx.operation = op.name
                ctx.uri_params = dict(params)
            except Exception:
                ctx.operation = None
            return ctx
        if service in REST_JSON_SERVICES:
            ctx.protocol = "rest-json"
            try:
                from moto.core.routing import get_service_router

                op, params = get_service_router(service).match(EmuRequest(environ))
                ctx.operation = op.name
                ctx.uri_params = dict(params)
            except Exception:
                ctx.operation = None
            return ctx
        if (environ.get("HTTP_SMITHY_PROTOCOL") or "").lower() == "rpc-v2-cbor":
            ctx.protocol = "cbor"
            m = re.match(r"^/service/[^/]+/operation/([^/]+)$", environ.get("PATH_INFO", ""))
            ctx.operation = m.group(1) if m else None
            return ctx
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            ctx.protocol = "json"
            ctx.operation = target.split(".")[-1]
            return ctx
        ctx.protocol = "query"
        if ctype.startswith("application/x-www-form-urlencoded"):
            body = read_body(environ)
            ctx.form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        action = (ctx.form.get("Action") or query.get("Action") or [None])[0]
        ctx.operation = action
        return ctx

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        try:
            if path.startswith("/_drpilot/") or path == "/_drpilot":
                return self._control(environ, start_response)
            if path.startswith("/moto-api/reset") and path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                with self.emu.lock:
                    self.emu.reset()
                    return self.moto(environ, start_response)
            if path.startswith("/moto-api") or path == "/favicon.ico":
                return self.moto(environ, start_response)
            return self._aws(environ, start_response)
        except Exception:  # pragma: no cover - surfaces as a 500 with the traceback
            tb = traceback.format_exc()
            print(tb, flush=True)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [tb.encode()]

    def _aws(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        ctx = self.classify(environ)
        drop = None
        if ctx.service:
            latency, failing, drop = self.faults.decide(ctx.service, ctx.operation, ctx.region)
            if latency > 0:
                time.sleep(self.emu.clock.real_seconds(latency))
            if failing is not None:
                protocol = ctx.protocol or "query"
                if failing["kind"] == "throttle":
                    status, headers, body = faultmod.throttle_response(protocol, ctx.service, failing.get("code"))
                else:
                    status, headers, body = faultmod.server_error_response(
                        protocol, ctx.service, failing["status"], failing.get("code")
                    )
                start_response(_status_line(status), headers + [("Content-Length", str(len(body)))])
                return [body]
        with self.emu.lock:
            self.emu.tick()
            caller = None
            if ctx.service and self.emu.cfg("iam", "enforce"):
                caller, refused = self.iam.before(ctx, environ)
                if refused is not None:
                    status, headers, body = refused
                    start_response(_status_line(status), headers + [("Content-Length", str(len(body)))])
                    return [body]
            if ctx.protocol == "cbor":
                status, headers, body, length = cbor_bridge.dispatch(self, environ, ctx)
            else:
                status, headers, body, length = self.dispatch(environ, ctx)
            if caller is not None:
                replaced = self.iam.after(caller, ctx, environ, status, headers, body)
                if replaced is not None:
                    status, headers, body = replaced
                    length = None
        if length is None or environ.get("REQUEST_METHOD") != "HEAD":
            length = str(len(body))
        if drop is not None and "drpilot.drop_response" in environ:
            # The service has acted; the client never sees its answer (the request
            # handler discards what is written and resets or holds the connection).
            environ["drpilot.drop_response"](drop)
        start_response(_status_line(status), headers + [("Content-Length", length)])
        return [body]

    def dispatch(self, environ: dict, ctx: Ctx) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
        """Serve one AWS request (lock held): ours, or moto's with optional post-hooks.
        Returns (status, headers without Content-Length, body, moto's Content-Length)."""
        exts = self.by_service.get(ctx.service or "", [])
        for ext in exts:
            cls = ext.handler_for(ctx)
            if cls is not None:
                status, headers, body = dispatch_response_class(cls, environ)
                return status, headers, body, None
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = status
            captured["headers"] = list(headers)
            return chunks.append

        result = self.moto(environ, capture)
        try:
            for chunk in result:
                chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        status = int(captured["status"].split(" ", 1)[0])
        length = next((v for k, v in captured["headers"] if k.lower() == "content-length"), None)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        body = b"".join(chunks)
        for ext in exts:
            if ctx.operation in getattr(ext, "after_ops", ()):
                status, headers, body = ext.after(ctx, environ, status, headers, body)
        return status, headers, body, length

    # ------------------------------------------------------------------ control API
    def route(self, method: str, pattern: str, fn: Callable[..., Any]) -> None:
        self.routes.append((method, re.compile("^/_drpilot" + pattern + "/?$"), fn))

    def _install_routes(self) -> None:
        emu = self.emu
        r = self.route

        r("GET", "/health", lambda body: {"ok": True, "account_id": emu.account_id})
        r("GET", "/state", lambda body: self.state())
        r("POST", "/reset", self._reset)
        r("GET", "/seed", lambda body: {"seed": emu.seed})
        r("POST", "/seed", self._seed)
        r("GET", "/clock", lambda body: {"speed": emu.clock.speed, "now": emu.now()})
        r("POST", "/clock", self._clock)
        r("POST", "/clock/advance", self._advance)
        r("GET", "/config", lambda body: emu.config)
        r("POST", "/config", lambda body: self._locked(lambda: emu.update_config(body or {})))
        r("GET", "/faults", lambda body: self.faults.snapshot())
        r("POST", "/faults", lambda body: self.faults.add_rule(body or {}))
        r("DELETE", "/faults", lambda body: (self.faults.clear_rules(), {"rules": []})[1])
        r("DELETE", "/faults/(?P<rule_id>[^/]+)", self._delete_rule)
        r("GET", "/blackholes", lambda body: {"blackholes": self.faults.snapshot()["blackholes"]})
        r("POST", "/blackholes", self._blackhole)
        r("DELETE", "/blackholes", lambda body: (self.faults.clear_blackhole(), {"blackholes": []})[1])
        r("DELETE", "/blackholes/(?P<region>[^/]+)", self._unblackhole)
        for ext in self.extensions:
            for method, pattern, fn in getattr(ext, "routes", lambda: [])():
                self.route(method, pattern, fn)

    def _locked(self, fn: Callable[[], Any]) -> Any:
        with self.emu.lock:
            return fn()

    def _reset(self, body: Any) -> dict:
        body = body or {}
        full = bool(body.get("moto", True))
        with self.emu.lock:
            if full:
                from moto.moto_api._internal.models import moto_api_backend

                moto_api_backend.reset()
            self.emu.reset(extensions=full)
        return {"reset": True, "moto": full}

    def _seed(self, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("seed"), int):
            raise HttpError(400, 'body must be {"seed": <integer>}')
        self.emu.set_seed(body["seed"])
        return {"seed": self.emu.seed}

    def _clock(self, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("speed"), (int, float)) or isinstance(body.get("speed"), bool):
            raise HttpError(400, 'body must be {"speed": <number > 0>}')
        with self.emu.lock:
            self.emu.tick()
            self.emu.clock.set_speed(body["speed"])
        return {"speed": self.emu.clock.speed, "now": self.emu.now()}

    def _advance(self, body: Any) -> dict:
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise HttpError(400, 'body must be {"seconds": <number >= 0>}')
        with self.emu.lock:
            self.emu.tick()
            self.emu.clock.advance(seconds)
            self.emu.tick()
        return {"speed": self.emu.clock.speed, "now": self.emu.now()}

    def _delete_rule(self, body: Any, rule_id: str) -> dict:
        if not self.faults.remove_rule(rule_id):
            raise HttpError(404, f"no fault rule {rule_id}")
        return {"deleted": rule_id}

    def _blackhole(self, body: Any) -> dict:
        if not isinstance(body, dict) or not body.get("region"):
            raise HttpError(
                400,
                'body must be {"region": "...", "mode": "hold"|"reset", "hold_seconds": N, '
                '"services": ["s3", ...] or null}',
            )
        return self.faults.set_blackhole(
            body["region"], body.get("mode", "hold"), body.get("hold_seconds"), body.get("services")
        )

    def _unblackhole(self, body: Any, region: str) -> dict:
        self.faults.clear_blackhole(region)
        return {"cleared": region}

    def state(self) -> dict:
        with self.emu.lock:
            self.emu.tick()
            out = {
                "account_id": self.emu.account_id,
                "seed": self.emu.seed,
                "clock": {"speed": self.emu.clock.speed, "now": self.emu.now()},
                "config": self.emu.config,
                "faults": self.faults.snapshot(),
            }
            for ext in self.extensions:
                out[ext.name] = ext.state()
            return out

    def _control(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        raw = read_body(environ)
        status = 200
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
            status, payload = 400, {"error": "body is not JSON"}
        if body is None and method == "GET" and environ.get("QUERY_STRING"):
            # A GET's parameters come in its query string: they are its body.
            query = parse_qs(environ["QUERY_STRING"], keep_blank_values=True)
            body = {k: v[-1] for k, v in query.items()}
        if status == 200:
            matched = [(m, rx, fn) for m, rx, fn in self.routes if rx.match(path)]
            if not matched:
                status, payload = 404, {"error": f"no control endpoint {path}"}
            else:
                for m, rx, fn in matched:
                    if m == method:
                        try:
                            payload = fn(body, **rx.match(path).groupdict())  # type: ignore[union-attr]
                        except HttpError as e:
                            status, payload = e.status, {"error": e.message}
                        except (ValueError, KeyError, TypeError) as e:
                            status, payload = 400, {"error": str(e)}
                        break
                else:
                    status, payload = 405, {"error": f"{method} not allowed on {path}"}
        data = json.dumps(payload, default=str, indent=1).encode()
        start_response(_status_line(status), [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


class EmulatorRequestHandler(MotoRequestHandler):
    """Drops requests for blackholed Regions (or blackholed services of a Region, by the
    SigV4 signing service) before any WSGI processing, and the
    responses of requests a drop_response rule picked after the service handled them."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ["drpilot.drop_response"] = self._withhold_response
        return environ

    def _withhold_response(self, rule: dict) -> None:
        """Called by the app before it answers: whatever is written from now on goes
        nowhere; run_wsgi then resets or holds the connection."""
        self._dropped_rule = rule
        self._real_wfile = self.wfile
        self.wfile = io.BytesIO()  # type: ignore[assignment]

    def run_wsgi(self) -> None:
        app = self.server.app  # type: ignore[attr-defined]
        faults = getattr(app, "faults", None)
        if faults is not None:
            query = self.path.split("?", 1)[1] if "?" in self.path else ""
            scope = scope_from_headers(self.headers.get("Authorization"), query)
            entry = faults.blackhole_for(scope[1], scope[0]) if scope else None
            if entry is not None:
                self._drop(entry, app.emu.cfg("blackhole", "hold_seconds"))
                return
        self._dropped_rule: dict | None = None
        super().run_wsgi()
        if self._dropped_rule is not None:
            self.wfile = self._real_wfile
            self._drop(self._dropped_rule, app.emu.cfg("blackhole", "hold_seconds"))

    def _drop(self, entry: dict, default_hold: float) -> None:
        self.close_connection = True
        conn: socket.socket = self.connection
        if entry["mode"] == "reset":
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            except OSError:
                pass
            return
        hold = entry.get("hold_seconds", default_hold)
        deadline = time.monotonic() + hold
        # Hold the connection with no answer. Stop early once the client gives up.
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                readable, _, _ = select.select([conn], [], [], min(left, 0.1))
                if readable:
                    data = conn.recv(65536)
                    if not data:
                        break
            except OSError:
                break
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # quiet by default
        if getattr(self.server, "verbose", False):
            super().log_request(*args, **kwargs)


def make_server(host: str = "127.0.0.1", port: int = 0, emu: Emulator | None = None, verbose: bool = False) -> Any:
    from werkzeug.serving import make_server as wz_make_server

    app = EmulatorApp(emu)
    server = wz_make_server(host, port, app, threaded=True, request_handler=EmulatorRequestHandler)
    server.verbose = verbose  # type: ignore[attr-defined]
    server.daemon_threads = True
    return server
