"""`python -m drpilot_emulator.server [--port N]`: serve on 127.0.0.1 in the foreground
and print exactly one line, the URL, on stdout once the socket accepts connections."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos/emulator/start", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault layer's RNG")
    parser.add_argument("--clock-speed", type=float, default=None, help="initial clock speed")
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        help="authorize every AWS request against the caller's IAM policies (the administrator key of README.md acts as root)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    os.environ.setdefault("MOTO_ACCOUNT_ID", "111122223333")

    from .app import make_server
    from .core import Emulator

    emu = Emulator()
    if args.seed is not None:
        emu.set_seed(args.seed)
    if args.enforce_iam:
        emu.start_config = {"iam": {"enforce": True}}
        emu.update_config(emu.start_config)
    if args.clock_speed is not None:
        emu.clock.set_speed(args.clock_speed)
    try:
        server = make_server(args.host, args.port, emu, verbose=args.verbose)
    except OSError as e:
        print(f"chaos/emulator/start: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        emu.stop_ticker()
        return 1
    host, port = server.server_address[:2]

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        emu.stop_ticker()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
