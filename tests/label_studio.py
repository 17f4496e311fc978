"""A real Label Studio server on loopback, and the few API calls the round trip needs.

The server runs from its own venv (`make label-studio` puts it in `.venv-ls/`), with its data in a
temporary folder. Users log in through the web form (session and CSRF cookie), as a browser does:
Label Studio 1.23 disables the legacy API tokens by default.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
LABEL_STUDIO = ROOT / ".venv-ls" / "bin" / "label-studio"
ADMIN = ("admin@example.org", "admin-password-1")
START_TIMEOUT_S = 300


class Server:
    """`label-studio start` on `port`; `stop()` ends it."""

    def __init__(self, data_dir: Path, port: int):
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LABEL_STUDIO_USERNAME": ADMIN[0],
               "LABEL_STUDIO_PASSWORD": ADMIN[1], "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "false",
               "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}
        self.url = f"http://127.0.0.1:{port}"
        self.log = data_dir / "server.log"
        with self.log.open("w") as handle:
            # as `make label-studio` starts it: bound to the loopback only (--internal-host; --host is its URL)
            self.process = subprocess.Popen([str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1",
                                             "--port", str(port)], env=env, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"label-studio exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)  # polling the health endpoint until it answers, bounded by the deadline
        self.stop()
        raise RuntimeError(f"label-studio did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class User:
    """One logged-in Label Studio user (signed up first when `signup`)."""

    def __init__(self, url: str, email: str, password: str, signup: bool = False):
        self.url = url
        self.session = requests.Session()
        page = f"{url}/user/{'signup' if signup else 'login'}/"
        self.session.get(page, timeout=30)
        form = {"email": email, "password": password, "csrfmiddlewaretoken": self.session.cookies.get("csrftoken")}
        self.session.post(page, data=form, headers={"Referer": page}, timeout=30)
        self.session.headers.update({"X-CSRFToken": self.session.cookies.get("csrftoken", ""), "Referer": url})
        me = self.call("get", "/api/current-user/whoami")
        self.id, self.email = me["id"], me["email"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = getattr(self.session, method)(f"{self.url}{path}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_project(self, title: str, label_config: str) -> int:
        return self.call("post", "/api/projects", json={"title": title, "label_config": label_config})["id"]

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> list[int]:
        self.call("post", f"/api/projects/{project}/import", json=tasks)
        listed = self.call("get", "/api/tasks", params={"project": project, "page_size": 1000})
        return sorted(t["id"] for t in listed["tasks"])

    def annotate(self, task: int, label: str, cancelled: bool = False) -> int:
        result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
        return self.call("post", f"/api/tasks/{task}/annotations/", json={"result": result,
                                                                           "was_cancelled": cancelled})["id"]

    def personal_token(self) -> str:
        """A personal access token (a JWT refresh token), as Account & Settings makes one."""
        return self.call("post", "/api/token/")["token"]

    def export(self, project: int) -> list[dict[str, Any]]:
        return self.call("get", f"/api/projects/{project}/export", params={"exportType": "JSON"})
