"""A persistent SQLite (WAL) cache for responses, judge verdicts and sandbox results.

Rows are JSON values under a string key in a named kind ("responses", "judgments", "scores").
Keys are hashes of everything that decides the value; no secret is ever part of a key or a value.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

CachePolicy = Literal["use", "refresh", "off"]
KINDS = ("responses", "judgments", "scores")


def canonical(value: Any) -> str:
    """The canonical JSON that keys hash: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def stable_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of `parts`: equal inputs give equal keys across runs and machines."""
    return hashlib.sha256(canonical(parts).encode()).hexdigest()


class Cache:
    """Reads honour the policy (`use` reads, `refresh` and `off` do not); writes happen unless `off`."""

    def __init__(self, path: Path | None, *, policy: CachePolicy = "use", expiry_s: float | None = None) -> None:
        self.policy: CachePolicy = policy if path is not None else "off"
        self.expiry_s = expiry_s
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None and policy != "off":
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for kind in KINDS:
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {kind} (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)"
                )

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
        data = [(k, json.dumps(v, ensure_ascii=False), now) for k, v in rows.items()]
        with self._lock:
            self._db.executemany(f"INSERT OR REPLACE INTO {_kind(kind)} VALUES (?, ?, ?)", data)

    def put(self, kind: str, key: str, value: Any) -> None:
        self.put_many(kind, {key: value})

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
            self._db = None


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}")
    return kind
