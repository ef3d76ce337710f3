"""Running the demo server with uvicorn."""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import os
import socket
from datetime import timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from .._space import Space
from .._space import open as open_space
from ..errors import ValidationError
from ._app import create_app
from ._routing import RateLimits

__all__ = ["is_loopback", "listen", "serve", "worker_app"]

#: What a worker process reads to open its own space and build its own application: the
#: URL of the store, and the options of :func:`create_app` as JSON.
_ENV_URL = "MONESPACE_SERVE_URL"
_ENV_OPTIONS = "MONESPACE_SERVE_OPTIONS"


def is_loopback(host: str) -> bool:
    """Whether *host* is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to *host* and *port*, for :func:`serve`: binding first lets a caller
    refuse a port in use (:class:`OSError`) before announcing anything, and keeps the port
    between the check and the serving. Port 0 lets the system choose one.

    .. versionadded:: 0.2
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a port left in TIME_WAIT by a server just stopped is reusable;
        # one another server listens on is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _setup_logging(log_level: str) -> None:
    logger = logging.getLogger("monespace.server")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
        )
        logger.addHandler(handler)
        logger.setLevel(log_level.upper())


def _options_to_json(options: dict[str, Any], log_level: str) -> str:
    """The options of :func:`create_app` a worker process needs, as JSON."""
    out: dict[str, Any] = {"log_level": log_level}
    for name, value in options.items():
        if name in ("secure_cookies", "demo", "max_body_bytes"):
            out[name] = value
        elif name in ("session_idle", "session_absolute"):
            out[name] = value.total_seconds()
        elif name == "rate_limits":
            out[name] = [value.per_ip, value.per_person, value.window_seconds]
        else:
            raise TypeError(f"the option {name!r} cannot be given to worker processes")
    return json.dumps(out)


def _options_from_json(text: str) -> dict[str, Any]:
    options: dict[str, Any] = json.loads(text)
    for name in ("session_idle", "session_absolute"):
        if name in options:
            options[name] = timedelta(seconds=options[name])
    if "rate_limits" in options:
        options["rate_limits"] = RateLimits(*options["rate_limits"])
    return options


def worker_app() -> Starlette:
    """The application of one worker process of :func:`serve` (an uvicorn factory).

    Each worker opens its own space from the URL the parent process left in its
    environment; sessions and attempt counters are shared through that store.

    .. versionadded:: 0.3
    """
    url = os.environ.get(_ENV_URL)
    if not url:
        raise RuntimeError(f"{_ENV_URL} is not set: start workers through monespace.server.serve")
    options = _options_from_json(os.environ.get(_ENV_OPTIONS, "{}"))
    _setup_logging(options.pop("log_level", "info"))
    space = open_space(url)
    atexit.register(space.close)
    return create_app(space, **options)


def serve(
    space: Space,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    sock: socket.socket | None = None,
    workers: int = 1,
    **options: Any,
) -> None:
    """Serve *space* with uvicorn until interrupted (Ctrl-C).

    Session cookies are ``Secure`` unless *host* is a loopback address. uvicorn's access log
    is off: the server logs the route *template*, the status and the duration of each request,
    never a URL, a query string or a body. Other *options* go to :func:`create_app`.

    :param sock: a socket :func:`listen` bound already (*host* and *port* then only name
        it in the log).
    :param workers: how many server processes share the socket. Past one, each process
        opens its own space from ``space.url`` (:func:`worker_app`), and they share the
        sessions and attempt counters through the store, which must be a database server
        (:attr:`Space.shared_by_processes`): an SQLite file or a memory space is refused.
        A worker opens it as ``monespace.open(space.url)`` does: with the default key
        provider (the key file, or the key in the environment), clock and settings, not
        those *space* was given.
    :raises ValidationError: *workers* below 1, or above 1 on a store that cannot be
        shared by processes.

    .. versionchanged:: 0.2 *sock*.
    .. versionchanged:: 0.3 *workers*.
    """
    if workers < 1:
        raise ValidationError(f"'workers' must be at least 1 (got {workers})")
    if workers > 1 and not space.shared_by_processes:
        raise ValidationError(
            f"'workers' must be 1 on this store (got {workers}): several server processes "
            "need a database server they all write to, such as postgresql://; an SQLite "
            "file or a memory space serves one process"
        )
    options.setdefault("secure_cookies", not is_loopback(host))
    _setup_logging(log_level)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
    }
    if workers == 1:
        config = uvicorn.Config(create_app(space, **options), **common)
        uvicorn.Server(config).run(sockets=None if sock is None else [sock])
        return
    # uvicorn spawns the workers: they learn the store and the options from the environment
    # they inherit from this process.
    os.environ[_ENV_URL] = space.url
    os.environ[_ENV_OPTIONS] = _options_to_json(options, log_level)
    config = uvicorn.Config(
        "monespace.server._run:worker_app", factory=True, workers=workers, **common
    )
    bound = sock if sock is not None else config.bind_socket()
    Multiprocess(config, sockets=[bound]).run()
