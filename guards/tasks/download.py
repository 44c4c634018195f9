"""`guards data download`: every data set from a pinned source, in the layout GUARDS_DATA_DIR expects.

Where it goes: `--dest`, else the user cache folder (`$XDG_CACHE_HOME/persona-guard/data`, or
`~/.cache/persona-guard/data`); a configured data folder (GUARDS_DATA_DIR, `[run] data_dir`) still wins at run time.
What it checks: every file as written against the sha256 manifest shipped in the package (`data_manifest.json`);
a mismatch names the file and keeps nothing half-written (downloads land in `<dest>/.partial/` and are moved into
place only once verified). Resumable: files already in place with the right checksum are skipped and a partial
download continues with an HTTP Range request.

Sources: the pinned upstream files (`SOURCES`), or a mirror in the final layout (`--mirror URL` or
GUARDS_DATA_MIRROR: `<URL>/<path>` for every path in the manifest; tests serve `../shared/data` on loopback).
The MMLU copy is the Hugging Face `cais/mmlu` export (header `question,choice0..3,answer`, integer answers); the
upstream tarball has no header and letter answers, so `mmlu_rows` converts it (byte-identical for the 57 dev files,
checked against the personalization-bias repository's copy of the tarball's CSVs).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from guards.tasks.data import DataUnavailable

MANIFEST_NAME = "MANIFEST.sha256"  # written last into the destination: the files as written and their sha256
CHUNK = 1 << 16
Progress = Callable[[int, int, str], None]  # (files done, files total, the current file)


@dataclass(frozen=True)
class Source:
    """Where one group of files comes from upstream: a single file (`path` is the manifest path it becomes) or the
    MMLU tarball (`path` is the folder prefix; every `<split>/<subject>_<split>.csv` is converted)."""

    url: str
    path: str
    kind: str = "file"  # "file" | "mmlu-tar"
    tested: bool = False  # fetched and checked against the manifest by the maintainers (see the README)


_PB = "https://raw.githubusercontent.com/brcsomnath/personalization-bias/88e76bb818c1c4b4a12393277625625207541617"
_GSM = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c"
_SR = "https://raw.githubusercontent.com/alexandrasouly/strongreject/main/strongreject_dataset"
SOURCES: Mapping[str, tuple[Source, ...]] = {  # data set -> its upstream files; the manifest pins their content
    "personas": (Source(f"{_PB}/data/personas.json", "personalization_bias/personas.json"),),
    "mmlu": (Source("https://people.eecs.berkeley.edu/~hendrycks/data.tar", "mmlu", kind="mmlu-tar"),),
    "gsm8k": (Source(f"{_GSM}/grade_school_math/data/test.jsonl", "gsm8k/test.jsonl"),),
    "mbpp": (Source("https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl",
                    "mbpp/mbpp.jsonl"),),
    "do_not_answer": (Source(f"{_PB}/data/dnd/do_not_answer_en.csv", "do_not_answer/do_not_answer_en.csv"),),
    "strongreject": (Source(f"{_SR}/strongreject_dataset.csv", "strongreject/strongreject_dataset.csv"),
                     Source(f"{_SR}/strongreject_small_dataset.csv", "strongreject/strongreject_small_dataset.csv"),
                     Source(f"{_PB}/data/strongreject/strongreject_dataset.csv",
                            "personalization_bias/strongreject_dataset_346.csv")),
}
DATASETS = tuple(SOURCES)


def user_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The per-user cache folder `guards data download` writes to by default."""
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "persona-guard" / "data"


def downloaded_data_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """The user cache folder when a download into it has completed (its manifest is written last), else None."""
    folder = user_data_dir(environ)
    return str(folder) if (folder / MANIFEST_NAME).is_file() else None


def manifest() -> dict[str, Any]:
    """The shipped manifest: {"files": {path: {"sha256", "size", "dataset"}}}."""
    return dict(json.loads(resources.files("guards.tasks").joinpath("data_manifest.json").read_text()))


def manifest_digest() -> str:
    """One checksum of the manifest (the CI data cache key: a new pin is a new key)."""
    return hashlib.sha256(json.dumps(manifest()["files"], sort_keys=True).encode()).hexdigest()[:16]


def build_manifest(root: Path, datasets: Iterable[str] = DATASETS) -> dict[str, Any]:
    """The manifest of a data folder in the final layout (how `data_manifest.json` was made from shared/data)."""
    files: dict[str, dict[str, Any]] = {}
    for name in datasets:
        for source in SOURCES[name]:
            paths = sorted((root / source.path).rglob("*.csv")) if source.kind == "mmlu-tar" else [root / source.path]
            for path in paths:
                data = path.read_bytes()
                files[path.relative_to(root).as_posix()] = {"sha256": hashlib.sha256(data).hexdigest(),
                                                            "size": len(data), "dataset": name}
    return {"files": files}


def datasets_for(tasks: Iterable[str] | None) -> list[str]:
    """The data sets a list of task names needs (the identities' personas always); None = all."""
    if tasks is None:
        return list(DATASETS)
    unknown = [t for t in tasks if t not in SOURCES or t == "personas"]
    if unknown:
        raise DataUnavailable(f"--tasks: no data set named {', '.join(unknown)} (choose from "
                              f"{', '.join(d for d in DATASETS if d != 'personas')})")
    return ["personas", *dict.fromkeys(tasks)]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, part: Path, timeout_s: float = 60.0) -> None:
    """Download `url` to `part`, continuing a partial file with a Range request (a server that ignores it restarts
    the file)."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - pinned https or a mirror
            mode = "ab" if have and response.status == 206 else "wb"
            with part.open(mode) as handle:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked past the end: the part is already whole
            return
        raise DataUnavailable(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataUnavailable(f"{url}: {getattr(exc, 'reason', exc)} (the partial file is kept to resume)") from None


def _place(dest: Path, relative: str, data_or_part: bytes | Path, expected: Mapping[str, Any], origin: str) -> None:
    """Verify and move one file into place; a mismatch deletes it and names it."""
    target = dest / relative
    part = data_or_part if isinstance(data_or_part, Path) else dest / ".partial" / f"{relative}.part"
    if isinstance(data_or_part, bytes):
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(data_or_part)
    got = sha256_file(part)
    if got != expected["sha256"]:
        part.unlink(missing_ok=True)
        raise DataUnavailable(f"{relative}: sha256 mismatch (expected {expected['sha256'][:16]}..., got "
                              f"{got[:16]}...) from {origin}; nothing kept")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, target)


def _in_place(path: Path, meta: Mapping[str, Any]) -> bool:
    """Already downloaded and verified (resuming skips it)."""
    return path.is_file() and path.stat().st_size == meta["size"] and sha256_file(path) == meta["sha256"]


def mmlu_rows(raw: bytes) -> bytes:
    """An upstream MMLU CSV (no header, answer letter) as the Hugging Face export (header, answer 0-3)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["question", "choice0", "choice1", "choice2", "choice3", "answer"])
    for row_no, row in enumerate(csv.reader(io.StringIO(raw.decode("utf-8")))):
        if len(row) != 6 or row[5].strip() not in ("A", "B", "C", "D"):
            raise DataUnavailable(f"MMLU tarball: row {row_no + 1} is not question,A,B,C,D,letter")
        writer.writerow([*row[:5], "ABCD".index(row[5].strip())])
    return out.getvalue().encode("utf-8")


def download(dest: Path, datasets: Iterable[str] | None = None, *, mirror: str | None = None,
             progress: Progress | None = None, urls: Mapping[str, str] | None = None) -> list[str]:
    """Fetch, verify and place every file of `datasets` (default all) under `dest`; returns the paths written
    (files already in place and verified are skipped). `urls` overrides upstream URLs by data set (tests)."""
    files = manifest()["files"]
    chosen = list(datasets) if datasets is not None else list(DATASETS)
    wanted = {path: meta for path, meta in files.items() if meta["dataset"] in chosen}
    todo = {p: m for p, m in wanted.items() if not _in_place(dest / p, m)}
    written: list[str] = []
    done = len(wanted) - len(todo)

    def tick(path: str) -> None:
        nonlocal done
        done += 1
        written.append(path)
        if progress:
            progress(done, len(wanted), path)

    if progress:
        progress(done, len(wanted), "")
    if mirror:
        base = mirror.rstrip("/")
        for path, meta in sorted(todo.items()):
            part = dest / ".partial" / f"{path}.part"
            fetch(f"{base}/{path}", part)
            _place(dest, path, part, meta, f"{base}/{path}")
            tick(path)
    else:
        for name in chosen:
            for source in SOURCES[name]:
                url = (urls or {}).get(name, source.url)
                if source.kind == "mmlu-tar":
                    mine = {p: m for p, m in todo.items() if p.startswith(source.path + "/")}
                    if mine:
                        _mmlu_tar(dest, url, mine, tick)
                elif source.path in todo:
                    part = dest / ".partial" / f"{source.path}.part"
                    fetch(url, part)
                    _place(dest, source.path, part, todo[source.path], url)
                    tick(source.path)
    _write_manifest(dest, files)
    return written


def _mmlu_tar(dest: Path, url: str, todo: Mapping[str, Mapping[str, Any]], tick: Callable[[str], None]) -> None:
    archive = dest / ".partial" / "mmlu-data.tar.part"
    fetch(url, archive)
    with tarfile.open(archive) as tar:
        members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile() and m.name.endswith(".csv")}
        for path, meta in sorted(todo.items()):
            member = members.get(path.removeprefix("mmlu/"))  # data/dev/x_dev.csv -> dev/x_dev.csv
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise DataUnavailable(f"{url}: the tarball has no {path.removeprefix('mmlu/')}")
            _place(dest, path, mmlu_rows(handle.read()), meta, url)
            tick(path)
    archive.unlink(missing_ok=True)


def _write_manifest(dest: Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    """`sha256sum -c`-style list of every manifest file present in `dest`, verified; written last."""
    lines = [f"{meta['sha256']}  {path}" for path, meta in sorted(files.items()) if (dest / path).is_file()]
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f"{MANIFEST_NAME}.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, dest / MANIFEST_NAME)
    partial = dest / ".partial"
    if partial.is_dir() and not any(p.is_file() for p in partial.rglob("*")):
        for folder in sorted(partial.rglob("*"), reverse=True):
            folder.rmdir()
        partial.rmdir()
