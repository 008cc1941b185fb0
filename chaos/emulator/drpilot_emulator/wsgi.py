"""WSGI helpers shared by the request pipeline."""

from __future__ import annotations

import io


def read_body(environ: dict) -> bytes:
    """The request body, put back so that whoever reads next (moto) still sees it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
