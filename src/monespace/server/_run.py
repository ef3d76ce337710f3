"""Running the demo server with uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

import uvicorn

from .._space import Space
from ._app import create_app

__all__ = ["is_loopback", "listen", "serve"]


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


def serve(
    space: Space,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    sock: socket.socket | None = None,
    **options: Any,
) -> None:
    """Serve *space* with uvicorn until interrupted (Ctrl-C).

    Session cookies are ``Secure`` unless *host* is a loopback address. uvicorn's access log
    is off: the server logs the route *template*, the status and the duration of each request,
    never a URL, a query string or a body. Other *options* go to :func:`create_app`.

    :param sock: a socket :func:`listen` bound already (*host* and *port* then only name
        it in the log).

    .. versionchanged:: 0.2 *sock*.
    """
    options.setdefault("secure_cookies", not is_loopback(host))
    app = create_app(space, **options)
    logger = logging.getLogger("monespace.server")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(log_level.upper())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])
