"""Smithy RPC v2 CBOR in front of moto (which speaks only awsQuery and awsJson).

CloudWatch's model lists smithy-rpc-v2-cbor first, and SDKs generated from it (Go v2,
Ruby, and other recent AWS SDKs) send `POST /service/GraniteServiceVersion20100801/
operation/<Op>` with a CBOR body and `smithy-protocol: rpc-v2-cbor`. This bridge
decodes the request with botocore's CBOR parser against the operation's input shape,
re-serialises it as awsJson1.0 (the same service's other protocol), serves it like any
JSON request (our extensions, then moto), and encodes the answer back as CBOR: the
output shape's values, or `{"__type", "message"}` plus `x-amzn-query-error` for errors.
"""

from __future__ import annotations

import datetime
import io
import json
import struct
from typing import Any

from botocore.loaders import create_loader
from botocore.model import ServiceModel
from botocore.parsers import JSONParser, RpcV2CBORParser
from botocore.serialize import JSONSerializer

SIGNING_TO_MODEL = {"monitoring": "cloudwatch"}
_models: dict[str, ServiceModel] = {}


def service_model(signing_name: str) -> ServiceModel | None:
    name = SIGNING_TO_MODEL.get(signing_name, signing_name)
    if name not in _models:
        try:
            _models[name] = ServiceModel(create_loader().load_service_model(name, "service-2"), name)
        except Exception:
            return None
    return _models[name]


# ---------------------------------------------------------------------- CBOR encoding
def _head(out: bytearray, major: int, n: int) -> None:
    if n < 24:
        out.append(major << 5 | n)
    elif n < 0x100:
        out += bytes((major << 5 | 24, n))
    elif n < 0x10000:
        out.append(major << 5 | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x100000000:
        out.append(major << 5 | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(major << 5 | 27)
        out += n.to_bytes(8, "big")


def _encode(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            _head(out, 0, value)
        else:
            _head(out, 1, -1 - value)
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _head(out, 3, len(data))
        out += data
    elif isinstance(value, (bytes, bytearray)):
        _head(out, 2, len(value))
        out += value
    elif isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        _head(out, 6, 1)  # tag 1: epoch-based date/time
        _encode(out, float(value.timestamp()))
    elif isinstance(value, (list, tuple)):
        _head(out, 4, len(value))
        for item in value:
            _encode(out, item)
    elif isinstance(value, dict):
        _head(out, 5, len(value))
        for k, v in value.items():
            _encode(out, str(k))
            _encode(out, v)
    else:
        raise TypeError(f"cannot CBOR-encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    out = bytearray()
    _encode(out, value)
    return bytes(out)


def cbor_headers(request_id: str | None = None) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    if request_id:
        headers.append(("x-amzn-RequestId", request_id))
    return headers


def error(status: int, code: str, message: str, sender: bool = True) -> tuple[int, list[tuple[str, str]], bytes]:
    body = encode({"__type": code, "message": message})
    headers = cbor_headers() + [("x-amzn-query-error", f"{code};{'Sender' if sender else 'Receiver'}")]
    return status, headers, body


# ---------------------------------------------------------------------- bridge
def dispatch(app: Any, environ: dict, ctx: Any) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
    model = service_model(ctx.service or "")
    if model is None or "json" not in (model.metadata.get("protocols") or []):
        status, headers, body = error(400, "UnknownOperationException", "This service does not accept RPC v2 CBOR here.")
        return status, headers, body, None
    try:
        op = model.operation_model(ctx.operation or "")
    except Exception:
        status, headers, body = error(400, "UnknownOperationException", f"Unknown operation {ctx.operation}")
        return status, headers, body, None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    params: dict[str, Any] = {}
    if raw and op.input_shape is not None:
        parsed = RpcV2CBORParser().parse({"body": raw, "headers": {}, "status_code": 200}, op.input_shape)
        parsed.pop("ResponseMetadata", None)
        params = parsed
    request = JSONSerializer().serialize_to_request(params, op)
    body = request["body"] if isinstance(request["body"], bytes) else str(request["body"]).encode()
    json_env = dict(environ)
    json_env.pop("HTTP_SMITHY_PROTOCOL", None)
    json_env.update(
        {
            "PATH_INFO": "/",
            "RAW_URI": "/",
            "REQUEST_URI": "/",
            "QUERY_STRING": "",
            "CONTENT_TYPE": request["headers"]["Content-Type"],
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": request["headers"]["X-Amz-Target"],
            "wsgi.input": io.BytesIO(body),
        }
    )
    json_ctx = type(ctx)(
        service=ctx.service, region=ctx.region, operation=ctx.operation, protocol="json", query={}, form={}
    )
    status, headers, out, _ = app.dispatch(json_env, json_ctx)
    rid = next((v for k, v in headers if k.lower() == "x-amzn-requestid"), None)
    if status >= 300:
        try:
            data = json.loads(out or b"{}")
        except ValueError:
            data = {}
        code = str(data.get("__type") or data.get("code") or "InternalFailure").rsplit("#", 1)[-1]
        message = str(data.get("message") or data.get("Message") or "")
        query_error = next((v for k, v in headers if k.lower() == "x-amzn-query-error"), None)
        body_out = encode({"__type": code, "message": message})
        hdrs = cbor_headers(rid)
        if query_error:
            hdrs.append(("x-amzn-query-error", query_error))
        return status, hdrs, body_out, None
    result: dict[str, Any] = {}
    if op.output_shape is not None and out:
        result = JSONParser().parse(
            {"body": out, "headers": {k.lower(): v for k, v in headers}, "status_code": status}, op.output_shape
        )
        result.pop("ResponseMetadata", None)
    return status, cbor_headers(rid), encode(result), None
