"""Whether a tracking store can be used, told in one quick check before MLflow's own retries: an HTTP
server's health endpoint, a database's TCP port, a SQLite file's folder and permissions.

>>> check_reachable("sqlite:////no/such/folder/mlflow.db")  # doctest: +ELLIPSIS
Traceback (most recent call last):
FileNotFoundError: /no/such/folder (the folder of the SQLite store) does not exist; ...
"""

from __future__ import annotations

import os
from pathlib import Path

# A tracking server that does not answer within this many seconds is reported as unreachable,
# instead of MLflow's own retries holding training up for minutes.
_PROBE_TIMEOUT_S = 5


def check_reachable(uri: str) -> None:
    """Raise what keeps `uri` from being used: an http(s) server whose health endpoint does not answer
    (ConnectionError), a database store whose port nobody listens on (ConnectionError), a SQLite store
    whose folder is missing or read-only."""
    if uri.startswith("sqlite:///"):
        _check_writable(Path(uri.removeprefix("sqlite:///")))
    if uri.split(":", 1)[0].split("+", 1)[0] in _DATABASE_PORTS:
        _check_database_port(uri)
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=_PROBE_TIMEOUT_S).raise_for_status()
    except requests.RequestException as exc:
        raise ConnectionError(f"tracking server {uri} is unreachable ({type(exc).__name__})") from None


# Database stores MLflow reaches over TCP, and their default ports: MLflow retries a refused connection
# for about 100 s before it gives up, so one socket connect tells first.
_DATABASE_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mssql": 1433}


def _check_database_port(uri: str) -> None:
    """One TCP connect to a database store's host and port (skipped for a Unix socket: no host)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number: the database driver says so itself
        return
    if not host:
        return
    port = port or _DATABASE_PORTS[parts.scheme.split("+", 1)[0]]
    try:
        socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(f"tracking database {host}:{port} is unreachable ({exc.strerror or type(exc).__name__})"
                              ) from None


def _check_writable(db: Path) -> None:
    if not db.parent.is_dir():
        raise FileNotFoundError(f"{db.parent} (the folder of the SQLite store) does not exist; create it, or set "
                                "tracking.uri (or MLFLOW_TRACKING_URI) to another store")
    where = db if db.exists() else db.parent
    if not (os.access(where, os.W_OK) and os.access(db.parent, os.W_OK)):
        raise PermissionError(f"{where} is read-only; make it writable, or set tracking.uri (or MLFLOW_TRACKING_URI) "
                              "to another store")
