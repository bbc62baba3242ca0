"""clusterd-web: the web status and control page (HTTPS), its own process.

    clusterd-web [--config /etc/clusterd/web.conf] [--check]

Exit status: 0 after a clean stop (SIGTERM) or a passing --check, 1 when it cannot
listen, 2 for a refused config or when started as root.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from clusterd.web import config as webconfig
from clusterd.web import users

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
PROG = "clusterd-web"

logger = logging.getLogger("clusterd.web")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="clusterd's web status and "
                                 "control page (HTTPS).")
    ap.add_argument("--config", default=webconfig.DEFAULT_PATH, metavar="PATH",
                    help=f"the config file (default {webconfig.DEFAULT_PATH})")
    ap.add_argument("--check", action="store_true",
                    help="check the config, certificate and users file, then exit")
    ap.add_argument("--debug", action="store_true", help="log at debug level")
    return ap


async def serve(conf: webconfig.WebConfig) -> int:
    from aiohttp import web  # only the server needs it, not --check

    from clusterd.web import auth
    from clusterd.web.app import WebService, runner_options

    service = WebService(conf, auth.make(conf))
    runner = web.AppRunner(service.app(), **runner_options())
    await runner.setup()
    ctx = webconfig.ssl_context(conf)
    try:
        for address in conf.listen:
            site = web.TCPSite(runner, address, conf.port, ssl_context=ctx,
                               reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                sys.stderr.write(f"{PROG}: cannot listen on {address} port {conf.port}: "
                                 f"{exc.strerror or exc} (see listen and port in "
                                 f"{conf.path})\n")
                return EXIT_FAILURE
            logger.info("listening on https://%s:%d/ (control socket %s, auth %s)",
                        address if ":" not in address else f"[{address}]", conf.port,
                        conf.control_socket, conf.auth)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logger.info("stopping")
        return EXIT_OK
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if os.geteuid() == 0 and not args.check:
        sys.stderr.write(f"{PROG}: refusing to run as root: run it as the clusterd-web "
                         "user (systemctl start clusterd-web), which the control socket's "
                         "group haclient admits\n")
        return EXIT_USAGE
    try:
        conf = webconfig.load(args.config, users_check=users.check)
    except webconfig.WebConfigError as exc:
        sys.stderr.write("".join(f"{PROG}: {exc.path}: {problem}\n" for problem in exc.problems))
        return EXIT_USAGE
    if args.check:
        sys.stdout.write(f"{PROG}: {args.config}: OK\n")
        return EXIT_OK
    try:
        return asyncio.run(serve(conf))
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
