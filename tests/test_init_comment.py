"""`guards init` (every key at its default, never overwrites, .gitignore) and `guards comment` (one PR comment,
created then updated in place) against a loopback fake of the GitHub REST API."""

from __future__ import annotations

import json
import re
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from guards.cli.github import MARKER, cmd_comment
from guards.cli.init import next_steps, render_config, template
from guards.cli.main import main
from guards.config.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "guards" / "schemas" / "config.schema.json").read_text())


def test_the_gate_template_is_the_repositorys_gate() -> None:
    assert template("test_gate.py") == (REPO / "suites" / "test_gate.py").read_text()


def test_every_config_key_is_shown() -> None:
    text = render_config("openai/gpt-4o-mini", "prompts/system.txt")
    for section in ("target", "identities", "tasks", "judge", "thresholds", "run"):
        for key in SCHEMA["properties"][section]["properties"]:
            assert re.search(rf"^#?\s*(e\.g\. )?(\[\[?{section}\.)?{key}\b", text, re.M), f"{section}.{key}"


def test_uncommented_defaults_equal_the_defaults(tmp_path: Path) -> None:
    """Every `# key = value` line is the default: uncommenting them all changes no setting."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "system.txt").write_text("Be helpful.")
    text = render_config("openai/gpt-4o-mini", "prompts/system.txt")
    plain = tmp_path / "plain.toml"
    plain.write_text(text)
    full = tmp_path / "full.toml"
    full.write_text(re.sub(r"^# (?!e\.g\.)(\w+ = )", r"\1", text, flags=re.M))
    tomllib.loads(full.read_text())
    uncommented = re.findall(r"^(\w+) = ", full.read_text(), re.M)
    assert len(uncommented) > 30
    env = {"CI": ""}
    a, b = load_settings(plain, environ=env), load_settings(full, environ=env)
    fields = [f for f in Settings.__dataclass_fields__ if f not in ("config_path", "config_sha256")]
    assert {f: getattr(a, f) for f in fields} == {f: getattr(b, f) for f in fields}


def test_init_next_steps_fit_the_model() -> None:
    """An in-process model needs the local extra and no key, and does not run in the plain CI install; an API
    model needs its key, locally and as a repository secret."""
    local, api = next_steps("local/smollm2"), next_steps("openai/gpt-4o-mini")
    assert "persona-guard[local]==" in local and "no API key" in local and "OPENAI_API_KEY" not in local
    assert "repository secret" not in local and "plain package" in local
    assert "[local]" not in api and "OPENAI_API_KEY" in api and "repository secret" in api


def test_init_writes_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/")
    args = ["init", "--model", "openai/gpt-4o-mini", "--system-prompt-file", "prompts/system.txt", "--dir",
            str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "next steps" in out and "guards data download" in out
    assert (tmp_path / ".gitignore").read_text().splitlines()[-2:] == [".guards/", "reports/"]
    assert 'model = "openai/gpt-4o-mini"' in (tmp_path / "thresholds.toml").read_text()
    (tmp_path / "thresholds.toml").write_text("# mine\n")
    assert main(args) == 4
    assert "nothing written" in capsys.readouterr().err
    assert (tmp_path / "thresholds.toml").read_text() == "# mine\n"
    assert main([*args, "--force"]) == 0
    assert (tmp_path / ".gitignore").read_text().count(".guards/") == 1  # entries appended once


class FakeGitHub(BaseHTTPRequestHandler):
    """Issue comments of one repository, in memory: list (paginated), create, update."""

    comments: list[dict[str, Any]] = []  # noqa: RUF012
    calls: list[str] = []  # noqa: RUF012

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return dict(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

    def do_GET(self) -> None:  # noqa: N802
        FakeGitHub.calls.append(f"GET {self.path}")
        if self.headers.get("Authorization") != "Bearer ghs_test":
            return self._reply(401, {"message": "Bad credentials"})
        page = int(re.search(r"[?&]page=(\d+)", self.path).group(1))  # type: ignore[union-attr]
        return self._reply(200, self.comments[(page - 1) * 100: page * 100])

    def do_POST(self) -> None:  # noqa: N802
        FakeGitHub.calls.append(f"POST {self.path}")
        comment = {"id": 1000 + len(self.comments), "body": self._body()["body"], "user": {"type": "Bot"}}
        self.comments.append(comment)
        self._reply(201, comment)

    def do_PATCH(self) -> None:  # noqa: N802
        FakeGitHub.calls.append(f"PATCH {self.path}")
        cid = int(self.path.rsplit("/", 1)[1])
        comment = next(c for c in self.comments if c["id"] == cid)
        comment["body"] = self._body()["body"]
        self._reply(200, comment)


@pytest.fixture
def github(tmp_path: Path) -> Iterator[dict[str, str]]:
    FakeGitHub.comments = [{"id": i, "body": f"chatter {i}", "user": {"type": "User"}} for i in range(150)]
    FakeGitHub.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    yield {"GITHUB_API_URL": f"http://127.0.0.1:{server.server_address[1]}", "GITHUB_TOKEN": "ghs_test",
           "GITHUB_REPOSITORY": "acme/bot", "GITHUB_EVENT_PATH": str(event)}
    server.shutdown()
    server.server_close()


def test_comment_is_created_once_then_updated_in_place(github: dict[str, str], tmp_path: Path) -> None:
    body = tmp_path / "comment.md"
    body.write_text("verdict: fail\n")
    assert cmd_comment(["--body", str(body)], github) == 0
    body.write_text("verdict: pass\n")
    assert cmd_comment(["--body", str(body)], github) == 0
    mine = [c for c in FakeGitHub.comments if MARKER in c["body"]]
    assert len(mine) == 1 and "verdict: pass" in mine[0]["body"]
    assert [c for c in FakeGitHub.calls if not c.startswith("GET")] == [
        "POST /repos/acme/bot/issues/7/comments", f"PATCH /repos/acme/bot/issues/comments/{mine[0]['id']}"]
    assert "GET /repos/acme/bot/issues/7/comments?per_page=100&page=2" in FakeGitHub.calls  # paginated


def test_comment_skips_cleanly_without_a_token_or_on_api_errors(github: dict[str, str], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "comment.md"
    body.write_text("x" * 70000)
    assert cmd_comment(["--body", str(body)], {**github, "GITHUB_TOKEN": ""}) == 0
    assert "skipped (no GITHUB_TOKEN" in capsys.readouterr().out
    assert cmd_comment(["--body", str(body)], {**github, "GITHUB_TOKEN": "wrong"}) == 0
    assert "::warning::" in capsys.readouterr().err and not any(MARKER in c["body"] for c in FakeGitHub.comments)
    assert cmd_comment(["--body", str(body)], github) == 0  # over GitHub's limit: truncated, still posted
    posted = next(c for c in FakeGitHub.comments if MARKER in c["body"])
    assert len(posted["body"]) < 65536 and "truncated" in posted["body"]
