"""Shared pieces for the service extensions."""

from __future__ import annotations

import datetime
from typing import Any

from moto.core.exceptions import ServiceException


class AwsError(ServiceException):
    """Serialised by moto with the HTTP status and shape that the botocore model of the
    service that received the request gives the error `code`. (Defined outside the
    `moto` package so moto looks the code up in that service's model.)"""


class HttpError(Exception):
    """A control-API (`/_drpilot/`) error with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def aws_error(code: str, message: str) -> AwsError:
    return AwsError(code, message)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def parse_arn(arn: str) -> dict[str, str] | None:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return {
        "partition": parts[1],
        "service": parts[2],
        "region": parts[3],
        "account": parts[4],
        "resource": parts[5],
    }


class Extension:
    name = ""
    service = ""
    ops: frozenset[str] = frozenset()
    after_ops: frozenset[str] = frozenset()
    response_class: Any = None

    def __init__(self, emu: Any) -> None:
        self.emu = emu

    @property
    def services(self) -> tuple[str, ...]:
        """SigV4 signing names whose requests this extension sees."""
        return (self.service,)

    def handler_for(self, ctx: Any) -> Any:
        """The moto BaseResponse subclass that serves this request, or None to hand it
        to moto. (A service moto does not know at all must always answer here.)"""
        return self.response_class if ctx.operation in self.ops else None

    @property
    def account_id(self) -> str:
        return self.emu.account_id

    def reset(self) -> None:  # pragma: no cover - overridden
        pass

    def state(self) -> Any:
        return {}

    def routes(self) -> list[tuple[str, str, Any]]:
        return []
