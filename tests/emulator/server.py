#!/usr/bin/env python3
"""Run moto's server with moto_ext's patches on 127.0.0.1.

    server.py --port P [--watch-pid PID] [--quiet]

--port 0 picks a free port.  Once listening, one line goes to stdout:
    moto_ext listening on http://127.0.0.1:<port>
--watch-pid: exit as soon as process PID is gone (checked every 0.5 s), so a test
process that starts its own server never leaks it.  --quiet: no per-request log lines.
"""

import argparse
import logging
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the working tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto_ext  # noqa: E402,F401  (applies the patches)
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402


def _gone(pid: int, parent_at_start: int) -> bool:
    if pid == parent_at_start and os.getppid() != pid:
        return True  # our parent died (and we were re-parented): even if the pid is reused
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # zombie
    except (OSError, IndexError):
        return False


def _watch(pid: int) -> None:
    parent_at_start = os.getppid()
    while not _gone(pid, parent_at_start):
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--watch-pid", type=int)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.watch_pid is not None:
        threading.Thread(target=_watch, args=(args.watch_pid,), daemon=True).start()
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", args.port, app, threaded=True,
                         request_handler=MotoRequestHandler)
    port = server.socket.getsockname()[1]
    os.environ["MOTO_PORT"] = str(port)  # moto builds callback URLs from it
    print(f"moto_ext listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
