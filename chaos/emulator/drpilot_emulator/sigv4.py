"""Where a request is going: service and Region from its SigV4 credential scope."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

_SCOPE = re.compile(
    r"Credential=(?P<akid>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)/aws4_request"
)
_QUERY_SCOPE = re.compile(
    r"^(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request$"
)


def scope_from_headers(authorization: str | None, query_string: str | None = None) -> tuple[str, str] | None:
    """(service, region) from `Authorization` or a presigned URL's X-Amz-Credential."""
    if authorization:
        m = _SCOPE.search(authorization)
        if m:
            return m.group("service").lower(), m.group("region")
    if query_string and "X-Amz-Credential" in query_string:
        values = parse_qs(query_string).get("X-Amz-Credential")
        if values:
            m = _QUERY_SCOPE.match(values[0])
            if m:
                return m.group("service").lower(), m.group("region")
    return None


def scope_from_environ(environ: dict) -> tuple[str, str] | None:
    return scope_from_headers(environ.get("HTTP_AUTHORIZATION"), environ.get("QUERY_STRING"))
