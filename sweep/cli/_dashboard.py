"""``ocl dashboard``: optuna-dashboard on the sweep's storage."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer


def dashboard(
    storage: Annotated[
        str | None, typer.Option("--storage", help="Optuna storage URL. Default: sqlite:///studies/ocl.db", show_default=False)
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Browse studies, trials and their ocl: attributes in optuna-dashboard.

    Example: ocl dashboard --port 8080, then open http://127.0.0.1:8080
    """
    from sweep._env import DEFAULT_STORAGE
    from sweep.errors import OCLError
    from sweep.storage import open_storage

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise OCLError("ocl dashboard: optuna-dashboard is not installed; pip install 'ocl[dashboard]'") from None
    url = storage or DEFAULT_STORAGE
    opened = open_storage(url, heartbeat=False)
    _check_port(host, port)
    typer.echo(f"optuna-dashboard on http://{host}:{port} for {url} (Ctrl-C stops it)", err=True)
    try:
        run_server(opened, host=host, port=port)
    except OSError as exc:  # taken between the check and the server's own bind
        raise _port_error(host, port, exc) from None


def _port_error(host: str, port: int, exc: OSError):
    from sweep.errors import OCLError

    if exc.errno == errno.EADDRINUSE:
        return OCLError(
            f"--port {port}: port {port} on {host} is already in use (another dashboard?); "
            f"pass another, e.g. --port {port + 1 if port < 65535 else 8080}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return OCLError(f"--port {port}: not allowed to listen on port {port}; pass --port 1024 or above, e.g. --port 8080")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return OCLError(f"--host {host}: not an address of this machine; pass --host 127.0.0.1 or --host 0.0.0.0")
    return OCLError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port")


def _check_port(host: str, port: int) -> None:
    """Bind the port once, as the server will (address reuse on), so a taken port fails before start-up."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise _port_error(host, port, exc) from None
