"""Running the demo server with uvicorn."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import uvicorn

from .._space import Space
from ._app import create_app

__all__ = ["is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether *host* is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    space: Space,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Serve *space* with uvicorn until interrupted (Ctrl-C).

    Session cookies are ``Secure`` unless *host* is a loopback address. uvicorn's access log
    is off: the server logs the route *template*, the status and the duration of each request,
    never a URL, a query string or a body. Other *options* go to :func:`create_app`.
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
    uvicorn.Server(config).run()
