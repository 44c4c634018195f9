"""`guards comment`: post or update the one persona-guard comment on a pull request (GitHub REST API).

The action calls it after rendering `reports/comment.md`. One comment per pull request: the first comment whose
body carries the marker is edited in place, so reruns never stack comments. Without a token or a pull request
(a fork's pull request gets neither write access nor secrets) it says why it skipped and exits 0: a missing
comment must not turn the check red. The API base comes from GITHUB_API_URL (tests point it at a loopback fake).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from guards.core import exitcodes

MARKER = "<!-- persona-guard -->"
MAX_BODY = 64000  # GitHub's limit is 65,536 characters


class GitHubError(RuntimeError):
    """A REST call failed (status and message)."""


class GitHub:
    """The few REST calls the comment needs, over urllib (no extra dependency)."""

    def __init__(self, api: str, token: str, repository: str) -> None:
        self.api, self.token, self.repository = api.rstrip("/"), token, repository

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.api}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
            "User-Agent": "persona-guard"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - GITHUB_API_URL
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise GitHubError(f"{method} {path}: HTTP {exc.code} {exc.read().decode(errors='replace')[:200]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise GitHubError(f"{method} {path}: {getattr(exc, 'reason', exc)}") from None
        return json.loads(text) if text else None

    def comments(self, number: int) -> list[dict[str, Any]]:
        """Every comment on the issue or pull request, page by page."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.call("GET", f"/repos/{self.repository}/issues/{number}/comments?per_page=100&page={page}")
            out += batch
            if len(batch) < 100:
                return out
            page += 1


def upsert(github: GitHub, number: int, body: str, marker: str = MARKER) -> tuple[str, int]:
    """Edit the comment carrying `marker` (a bot's first, else anyone's), or create one. Returns (action, id)."""
    if marker not in body:
        body = f"{marker}\n{body}"
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n(truncated: the full report is in the workflow artifacts)\n"
    mine = [c for c in github.comments(number) if marker in (c.get("body") or "")]
    mine.sort(key=lambda c: (c.get("user", {}).get("type") != "Bot", c["id"]))
    if mine:
        github.call("PATCH", f"/repos/{github.repository}/issues/comments/{mine[0]['id']}", {"body": body})
        return "updated", int(mine[0]["id"])
    created = github.call("POST", f"/repos/{github.repository}/issues/{number}/comments", {"body": body})
    return "created", int(created["id"])


def pull_number(environ: Mapping[str, str]) -> int | None:
    """The pull request's number from the event payload (GITHUB_EVENT_PATH), if this is a pull request."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return None
    event = json.loads(Path(path).read_text())
    number = (event.get("pull_request") or {}).get("number")
    return int(number) if number else None


def cmd_comment(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="guards comment", description="post or update the PR comment")
    parser.add_argument("--body", type=Path, required=True, help="Markdown file (guards report --comment)")
    parser.add_argument("--pr", type=int, help="pull request number (default: from GITHUB_EVENT_PATH)")
    parser.add_argument("--marker", default=MARKER)
    args = parser.parse_args(argv)
    token, repository = environ.get("GITHUB_TOKEN", ""), environ.get("GITHUB_REPOSITORY", "")
    number = args.pr or pull_number(environ)
    if number is None or not token or not repository:
        missing = "a pull request" if number is None else "GITHUB_TOKEN" if not token else "GITHUB_REPOSITORY"
        print(f"guards comment: skipped (no {missing}; a fork's pull request has no write token)")
        return exitcodes.PASS
    github = GitHub(environ.get("GITHUB_API_URL", "https://api.github.com"), token, repository)
    try:
        action, comment_id = upsert(github, number, args.body.read_text(encoding="utf-8"), args.marker)
    except GitHubError as exc:  # a comment that cannot be posted is a warning, never a red gate
        print(f"::warning::persona-guard: the PR comment was not posted: {exc}", file=sys.stderr)
        return exitcodes.PASS
    print(f"guards comment: {action} comment {comment_id} on #{number}")
    return exitcodes.PASS
