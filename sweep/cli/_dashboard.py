"""``ocl dashboard``: optuna-dashboard on the sweep's storage."""

from __future__ import annotations

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
    from sweep._defaults import DEFAULT_STORAGE
    from sweep.errors import OCLError
    from sweep.storage import open_storage

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise OCLError("ocl dashboard: optuna-dashboard is not installed; pip install 'ocl[dashboard]'") from None
    url = storage or DEFAULT_STORAGE
    typer.echo(f"optuna-dashboard on http://{host}:{port} for {url} (Ctrl-C stops it)", err=True)
    run_server(open_storage(url, heartbeat=False), host=host, port=port)
