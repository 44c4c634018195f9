"""A persistent SQLite (WAL) cache for responses, judge verdicts and sandbox results.

Rows are JSON values under a string key in a named kind ("responses", "judgments", "scores").
Keys are hashes of everything that decides the value; no secret is ever part of a key or a value.

The folder is private (0700, the database files 0600): answers to harmful prompts live there. Values are stored as
valid UTF-8 (lone surrogates replaced) and a value over MAX_VALUE_CHARS is not stored. A file that is not a cache
(corrupt, truncated) stops the run with one line (CacheError, a ConfigError); the policy "reset" moves it aside to
`<name>.corrupt-<time>` and starts an empty cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from guards.config.settings import ConfigError

CachePolicy = Literal["use", "refresh", "off", "reset"]
KINDS = ("responses", "judgments", "scores")
MAX_VALUE_CHARS = 2 << 20  # a serialised value larger than this is not cached (an answer is capped at 1 MB)
_SURROGATE = re.compile("[\ud800-\udfff]")
log = logging.getLogger(__name__)


class CacheError(ConfigError):
    """The cache file cannot be used (corrupt, not a database): one line naming it and the way out."""


def canonical(value: Any) -> str:
    """The canonical JSON that keys hash: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def stable_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of `parts`: equal inputs give equal keys across runs and machines."""
    return hashlib.sha256(canonical(parts).encode()).hexdigest()


class Cache:
    """Reads honour the policy (`use` reads, `refresh` and `off` do not); writes happen unless `off`."""

    def __init__(self, path: Path | None, *, policy: CachePolicy = "use", expiry_s: float | None = None) -> None:
        reset = policy == "reset"
        self.policy: CachePolicy = ("use" if reset else policy) if path is not None else "off"
        self.expiry_s = expiry_s
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None and policy != "off":
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(OSError):
                os.chmod(path.parent, 0o700)
            try:
                self._db = _open(path)
            except sqlite3.DatabaseError as exc:
                if not reset:
                    raise CacheError(f"{path}: not a usable cache ({exc}): move it aside with --guards-cache reset "
                                     "(GUARDS_CACHE=reset, guards run --cache reset) or delete it") from None
                aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.replace(f"{path}{suffix}", f"{aside}{suffix}")
                log.warning("moved the unusable cache %s aside to %s", path, aside)
                self._db = _open(path)

    @property
    def reads(self) -> bool:
        return self._db is not None and self.policy == "use"

    def get_many(self, kind: str, keys: Iterable[str]) -> dict[str, Any]:
        """Cached values for those of `keys` present (one query per 500 keys)."""
        if not self.reads or self._db is None:
            return {}
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        oldest = time.time() - self.expiry_s if self.expiry_s else 0.0
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM {_kind(kind)} WHERE key IN ({marks}) AND created >= ?", (*chunk, oldest)
                ).fetchall()
                found.update((k, json.loads(v)) for k, v in rows)
        return found

    def get(self, kind: str, key: str) -> Any | None:
        return self.get_many(kind, [key]).get(key)

    def put_many(self, kind: str, rows: Mapping[str, Any]) -> None:
        """Store (or overwrite) values; committed at once so a crash loses nothing already answered."""
        if self._db is None or not rows:
            return
        now = time.time()
        data = []
        for k, v in rows.items():
            text = _SURROGATE.sub("\ufffd", json.dumps(v, ensure_ascii=False))
            if len(text) > MAX_VALUE_CHARS:
                log.warning("not caching a %d-character %s value (over %d)", len(text), kind, MAX_VALUE_CHARS)
                continue
            data.append((k, text, now))
        with self._lock:
            self._db.executemany(f"INSERT OR REPLACE INTO {_kind(kind)} VALUES (?, ?, ?)", data)

    def put(self, kind: str, key: str, value: Any) -> None:
        self.put_many(kind, {key: value})

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
            self._db = None


def _open(path: Path) -> sqlite3.Connection:
    """The database, created if absent (files 0600); sqlite3.DatabaseError when the file is not one."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for kind in KINDS:
            db.execute(f"CREATE TABLE IF NOT EXISTS {kind} (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)")
        db.execute("SELECT count(*) FROM responses LIMIT 1").fetchall()
    except sqlite3.DatabaseError:
        db.close()
        raise
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.chmod(f"{path}{suffix}", 0o600)
    return db


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}")
    return kind
