#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
commands on fd 3, answers on fd 4, each JSON message ended by a NUL byte), for tests of
pages that update themselves.

    cdp.py CHROMIUM PROFILE_DIR URL

Opens URL in a new tab, then for each line read on stdin (a JavaScript expression)
prints the expression's value as one JSON line on stdout. At end of input it closes
the browser. Standard library only.
"""
import json
import os
import subprocess
import sys


def main() -> int:
    chromium, profile, url = sys.argv[1:4]
    cmd_r, cmd_w = os.pipe()
    ans_r, ans_w = os.pipe()
    # Off the low numbers, so moving them to 3 and 4 in the child never lands on itself
    # (dup2 onto the same number would keep close-on-exec).
    high = [os.dup(fd) for fd in (cmd_r, ans_w)]
    for fd in (cmd_r, ans_w):
        os.close(fd)

    def wire() -> None:
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ],
        preexec_fn=wire,
        close_fds=False,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for fd in high:
        os.close(fd)
    to_browser = os.fdopen(cmd_w, "wb", buffering=0)
    from_browser = os.fdopen(ans_r, "rb", buffering=0)
    pending = b""
    next_id = 0

    def call(method, params=None, session=None):
        nonlocal pending, next_id
        next_id += 1
        msg = {"id": next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        to_browser.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in pending:
                chunk = from_browser.read(65536)
                if not chunk:
                    raise SystemExit(f"chromium closed the pipe while answering {method}")
                pending += chunk
            raw, pending = pending.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == next_id:
                if "error" in answer:
                    raise SystemExit(f"{method}: {answer['error']}")
                return answer["result"]

    try:
        target = call("Target.createTarget", {"url": url})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for line in sys.stdin:
            expr = line.strip()
            if not expr:
                continue
            r = call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
            value = r.get("result", {}).get("value")
            if "exceptionDetails" in r:
                value = {"exception": r["exceptionDetails"].get("text")}
            print(json.dumps(value), flush=True)
        try:
            call("Browser.close")
        except SystemExit:
            pass
    finally:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
