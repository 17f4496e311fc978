"""`trainer labelstudio push|pull`: the annotation loop's two browser steps, through Label Studio's API.

`push` creates a project with the labeling config `select` wrote and imports its tasks; `pull` exports
the project's annotations as the JSON that a `kind: labelstudio` source reads. Both talk to a Label
Studio server (by default `make label-studio`'s, on http://127.0.0.1:8080) with the user's access
token from `$LABEL_STUDIO_API_KEY`: a personal access token (a JWT, exchanged for a short-lived access
token at /api/token/refresh/, used as `Bearer`) or a legacy token (`Token`). The standard library's
urllib is enough for five JSON calls.

>>> auth_scheme("abc123")
'Token'
>>> auth_scheme("eyJhbGciOi.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2ln")
'Bearer'
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError, DataError
from trainer.infra.atomic import atomic_file
from trainer.workflows.selection import CONFIG_FILE, TASKS_FILE

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"  # `make label-studio`
TOKEN_ENV = "LABEL_STUDIO_API_KEY"  # the name Label Studio's own SDK reads
TIMEOUT_S = 120  # an export of a large project takes a while


def auth_scheme(token: str) -> str:
    """`Bearer` for a personal access token (a JWT: three dot-separated parts), `Token` for a legacy one."""
    return "Bearer" if token.count(".") == 2 else "Token"


@dataclass
class LabelStudio:
    """A Label Studio server and one user's token."""

    url: str
    token: str

    @classmethod
    def from_env(cls, url: str = DEFAULT_URL, token: str | None = None) -> LabelStudio:
        token = token or os.environ.get(TOKEN_ENV, "")
        if not token:
            raise ConfigError(f"${TOKEN_ENV}: expected your Label Studio access token, found none; copy it from "
                              f"Label Studio's Account & Settings > Personal Access Token and export {TOKEN_ENV}=...")
        return cls(url.rstrip("/"), token)

    def _header(self) -> str:
        if auth_scheme(self.token) == "Token":
            return f"Token {self.token}"
        access = self._send("POST", "/api/token/refresh/", {"refresh": self.token})
        return f"Bearer {access['access']}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call with the user's token; its JSON answer."""
        return self._send(method, path, body, authorization=self._header())

    def _send(self, method: str, path: str, body: Any = None, authorization: str | None = None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                content = response.read()
        except urllib.error.HTTPError as exc:
            raise ConfigError(self._refused(path, exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConfigError(f"--url: expected Label Studio at {self.url}, found nothing answering ({exc}); start "
                              "it with `make label-studio`, or pass --url") from None
        return json.loads(content) if content else None

    def _refused(self, path: str, exc: urllib.error.HTTPError) -> str:
        detail = exc.read().decode("utf-8", "replace")[:300].replace("\n", " ")
        if exc.code in (401, 403):
            return (f"{self.url}{path}: expected ${TOKEN_ENV} to be a valid access token of this server, found it "
                    f"refused (HTTP {exc.code}); copy a new one from Account & Settings")
        if exc.code == 404:
            return f"{self.url}{path}: expected it to exist, found HTTP 404 (check --project and --url)"
        return f"{self.url}{path}: expected Label Studio to accept the request, found HTTP {exc.code}: {detail}"


@dataclass
class Pushed:
    project: int
    tasks: int
    url: str


def push(tasks_dir: Path, title: str | None = None, client: LabelStudio | None = None) -> Pushed:
    """Create a project with `select`'s labeling config and import its tasks; returns the project.

    >>> push(Path("tasks/polnear-1"))  # doctest: +SKIP
    Pushed(project=3, tasks=300, url='http://127.0.0.1:8080/projects/3/data')
    """
    config_file, tasks_file = tasks_dir / CONFIG_FILE, tasks_dir / TASKS_FILE
    for path in (config_file, tasks_file):
        if not path.is_file():
            raise DataError(f"{tasks_dir}: expected a folder written by `trainer select`, found no {path.name}")
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    if not isinstance(tasks, list) or not tasks:
        raise DataError(f"{tasks_file}: expected a list of Label Studio tasks, found none")
    client = client or LabelStudio.from_env()
    project = client.call("POST", "/api/projects", {"title": title or tasks_dir.name,
                                                     "label_config": config_file.read_text(encoding="utf-8")})
    imported = client.call("POST", f"/api/projects/{project['id']}/import", tasks)
    count = int((imported or {}).get("task_count", len(tasks)))
    log.info("created Label Studio project %s (%s) with %d tasks", project["id"], project.get("title"), count)
    return Pushed(project["id"], count, f"{client.url}/projects/{project['id']}/data")


def pull(project: int, output: Path, client: LabelStudio | None = None) -> int:
    """Export a project's tasks with their annotations (Label Studio's JSON export) to `output`, written
    whole; returns how many annotations it holds."""
    client = client or LabelStudio.from_env()
    exported = client.call("GET", f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")
    if not isinstance(exported, list):
        raise DataError(f"project {project}: expected Label Studio's JSON export (a list of tasks), found "
                        f"{type(exported).__name__}")
    text = json.dumps(exported, indent=2, ensure_ascii=False)
    atomic_file(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return sum(len(task.get("annotations") or []) for task in exported)
