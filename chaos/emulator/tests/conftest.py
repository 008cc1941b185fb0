"""Starts one emulator per test session through `chaos/emulator/start` (a real
subprocess on a free 127.0.0.1 port), resets it before every test and stops it by pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

EMULATOR_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(EMULATOR_DIR))

ACCOUNT = "111122223333"
DEFAULT_SPEED = 200.0


@pytest.fixture(scope="session")
def emulator_url() -> Any:
    proc = subprocess.Popen(
        [str(EMULATOR_DIR / "start"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MOTO_ACCOUNT_ID": ACCOUNT},
    )
    try:
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith("http://127.0.0.1:"):
            proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r} {proc.stderr.read()}")  # type: ignore[union-attr]
        yield line
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Emu:
    def __init__(self, url: str) -> None:
        self.url = url
        self.account = ACCOUNT

    def control(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        assert status == expect, (status, payload)
        return json.loads(payload) if payload else None

    def client(self, service: str, region: str = "us-east-1", retries: int = 1, **config: Any) -> Any:
        cfg = Config(retries={"total_max_attempts": retries, "mode": "standard"}, **config)
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            config=cfg,
        )

    def speed(self, speed: float) -> None:
        self.control("POST", "/_drpilot/clock", {"speed": speed})

    def config(self, patch: dict) -> None:
        self.control("POST", "/_drpilot/config", patch)

    def wait(self, predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(interval)


@pytest.fixture
def emu(emulator_url: str) -> Emu:
    e = Emu(emulator_url)
    e.control("POST", "/_drpilot/reset")
    e.speed(DEFAULT_SPEED)
    return e


@pytest.fixture
def stack(emu: Emu) -> dict:
    """The shipped prod topology, seeded through the seed module."""
    from drpilot_emulator.seed import load_topology, seed

    return seed(load_topology(EMULATOR_DIR / "topologies" / "prod.toml"), emu.url)
