"""`guards data download`: files as written match the shipped sha256 manifest, resumable, a mismatch names the file
and keeps nothing half-written, the MMLU tarball converts to the HF export byte for byte, runs find the user cache."""

from __future__ import annotations

import csv
import functools
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from guards.cli.main import main
from guards.config.settings import load_settings
from guards.tasks.data import DataUnavailable
from guards.tasks.download import MANIFEST_NAME, build_manifest, download, manifest, mmlu_rows, user_data_dir


class Quiet(http.server.SimpleHTTPRequestHandler):
    """A static server that also honours Range (resumed downloads) and counts what it served."""

    served: list[str] = []  # noqa: RUF012 - per-class log, reset by the fixture

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        Quiet.served.append(self.path)
        wanted = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if wanted and path.is_file():
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            data = path.read_bytes()[start:]
            self.send_response(206)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()


@pytest.fixture
def serve() -> Iterator[functools.partial[str]]:
    servers = []

    def start(root: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    Quiet.served = []
    yield functools.partial(start)
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_manifest_is_the_shared_data_as_written(data_dir: Path) -> None:
    """Also pins the shared data README's checksums (e.g. GSM8K, Do-Not-Answer)."""
    assert build_manifest(data_dir)["files"] == manifest()["files"]
    files = manifest()["files"]
    assert files["gsm8k/test.jsonl"]["sha256"].startswith("3730d312f6e3")
    assert files["do_not_answer/do_not_answer_en.csv"]["sha256"].startswith("06acfa39a06a")
    assert len([p for p in files if p.startswith("mmlu/test/")]) == 57


def test_mirror_download_verifies_resumes_and_skips(tmp_path: Path, data_dir: Path, serve: functools.partial[str]
                                                    ) -> None:
    url = serve(data_dir)
    dest = tmp_path / "data"
    part = dest / ".partial" / "gsm8k" / "test.jsonl.part"  # a download cut halfway
    part.parent.mkdir(parents=True)
    part.write_bytes((data_dir / "gsm8k" / "test.jsonl").read_bytes()[:1000])
    written = download(dest, ["personas", "gsm8k", "do_not_answer"], mirror=url)
    assert sorted(written) == ["do_not_answer/do_not_answer_en.csv", "gsm8k/test.jsonl",
                               "personalization_bias/personas.json"]
    assert (dest / "gsm8k" / "test.jsonl").read_bytes() == (data_dir / "gsm8k" / "test.jsonl").read_bytes()
    assert not (dest / ".partial").exists()
    lines = (dest / MANIFEST_NAME).read_text().splitlines()
    assert any(line.endswith("  gsm8k/test.jsonl") for line in lines)
    Quiet.served.clear()
    assert download(dest, ["personas", "gsm8k", "do_not_answer"], mirror=url) == []  # all in place: nothing asked
    assert Quiet.served == []


def test_a_checksum_mismatch_names_the_file_and_keeps_nothing(tmp_path: Path, data_dir: Path,
                                                              serve: functools.partial[str]) -> None:
    bad = tmp_path / "bad-mirror"
    (bad / "gsm8k").mkdir(parents=True)
    (bad / "gsm8k" / "test.jsonl").write_text('{"question": "tampered", "answer": "#### 1"}\n')
    (bad / "personalization_bias").mkdir()
    (bad / "personalization_bias" / "personas.json").write_bytes(
        (data_dir / "personalization_bias" / "personas.json").read_bytes())
    dest = tmp_path / "data"
    with pytest.raises(DataUnavailable, match=r"gsm8k/test\.jsonl: sha256 mismatch.*nothing kept"):
        download(dest, ["personas", "gsm8k"], mirror=serve(bad))
    assert not (dest / "gsm8k" / "test.jsonl").exists()
    assert not list((dest / ".partial").rglob("*.part"))


def _upstream_tar(data_dir: Path, path: Path) -> None:
    """The upstream tarball's layout and format (no header, answer letter) made from the export."""
    with tarfile.open(path, "w") as tar:
        for split in ("dev", "test"):
            for csv_path in sorted((data_dir / "mmlu" / split).glob("*.csv")):
                with csv_path.open(encoding="utf-8", newline="") as handle:  # fields hold \r
                    rows = list(csv.reader(handle))[1:]
                out = io.StringIO()
                csv.writer(out, lineterminator="\n").writerows([*r[:5], "ABCD"[int(r[5])]] for r in rows)
                data = out.getvalue().encode()
                info = tarfile.TarInfo(f"data/{split}/{csv_path.name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_the_mmlu_tarball_converts_to_the_export_byte_for_byte(tmp_path: Path, data_dir: Path,
                                                               serve: functools.partial[str]) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _upstream_tar(data_dir, upstream / "data.tar")
    dest = tmp_path / "data"
    written = download(dest, ["mmlu"], urls={"mmlu": f"{serve(upstream)}/data.tar"})
    assert len(written) == 114
    assert not (dest / ".partial").exists()


def test_mmlu_rows_rejects_a_row_that_is_not_the_upstream_format() -> None:
    assert mmlu_rows(b"q,a,b,c,d,C\n").decode().splitlines()[1] == "q,a,b,c,d,2"
    with pytest.raises(DataUnavailable, match="row 2"):
        mmlu_rows(b"q,a,b,c,d,C\nq,a,b,c,d,7\n")


def test_cli_writes_to_the_user_cache_and_runs_find_it(tmp_path: Path, data_dir: Path, serve: functools.partial[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GUARDS_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings(None).data_dir is None  # nothing downloaded yet
    assert main(["data", "download", "--tasks", "gsm8k", "--mirror", serve(data_dir), "--quiet"]) == 0
    assert user_data_dir() == tmp_path / "cache" / "persona-guard" / "data"
    assert load_settings(None).data_dir == str(user_data_dir())
    monkeypatch.setenv("GUARDS_DATA_DIR", str(data_dir))  # a configured folder still wins
    assert load_settings(None).data_dir == str(data_dir)


def test_cli_names_an_unknown_data_set(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data", "download", "--tasks", "nope", "--dest", str(tmp_path)]) == 4
    assert "no data set named nope" in capsys.readouterr().err
