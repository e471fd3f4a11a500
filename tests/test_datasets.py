"""The data helper: checksum-verified cache, offline mirror, one-sentence errors."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from mlops_course import paths
from mlops_course.runtime import datasets
from mlops_course.runtime.datasets import DataError

WINE = datasets.DATASETS["winequality-red"]
# Read before any test clears it: CI points it at the shared offline mirror.
CONFIGURED_MIRROR = os.environ.get(datasets.MIRROR_VARIABLE)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(paths.DATA_CACHE_VARIABLE, str(folder))
    monkeypatch.delenv(datasets.MIRROR_VARIABLE, raising=False)
    return folder


def _mirror(tmp_path, monkeypatch, content: bytes | None):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    if content is not None:
        (mirror / WINE.filename).write_bytes(content)
    monkeypatch.setenv(datasets.MIRROR_VARIABLE, str(mirror))
    return mirror


def test_every_dataset_is_documented():
    for dataset in datasets.DATASETS.values():
        assert len(dataset.sha256) == 64, f"{dataset.name} needs a full sha256."
        assert dataset.url.startswith("http"), f"{dataset.name} needs its original URL."
        assert dataset.licence and dataset.citation, (
            f"{dataset.name} needs a licence and a citation."
        )


def test_mirror_copy_is_verified_and_cached(tmp_path, monkeypatch, cache):
    fake = b"a;b\n1;2\n"
    dataset = datasets.Dataset(
        "tiny",
        "tiny.csv",
        "http://127.0.0.1:9/tiny.csv",
        hashlib.sha256(fake).hexdigest(),
        "CC0",
        "none",
        (("sep", ";"),),
    )
    monkeypatch.setitem(datasets.DATASETS, "tiny", dataset)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.csv").write_bytes(fake)
    monkeypatch.setenv(datasets.MIRROR_VARIABLE, str(mirror))
    path = datasets.fetch("tiny")
    assert path == cache / "tiny.csv" and path.read_bytes() == fake
    frame = datasets.load_csv("tiny")
    assert list(frame.columns) == ["a", "b"], "read options (separator) must be applied"
    (mirror / "tiny.csv").unlink()
    assert datasets.fetch("tiny") == path, "a cached copy must be used without the mirror"


def test_corrupt_mirror_copy_names_file_and_both_checksums(tmp_path, monkeypatch, cache):
    _mirror(tmp_path, monkeypatch, b"not the wine data\n")
    with pytest.raises(DataError) as failure:
        datasets.fetch("winequality-red")
    message = str(failure.value)
    assert WINE.filename in message and WINE.sha256 in message
    assert hashlib.sha256(b"not the wine data\n").hexdigest() in message
    assert not (cache / WINE.filename).exists(), "a corrupt copy must not enter the cache"


def test_corrupt_cached_copy_is_reported_not_deleted(cache):
    cache.mkdir(parents=True)
    target = cache / WINE.filename
    target.write_bytes(b"edited by hand\n")
    with pytest.raises(DataError, match="delete it and run again"):
        datasets.fetch("winequality-red")
    assert target.exists(), "the helper must never delete a file the user may have made"


def test_missing_file_in_mirror(tmp_path, monkeypatch, cache):
    _mirror(tmp_path, monkeypatch, None)
    with pytest.raises(DataError, match="not in the mirror folder"):
        datasets.fetch("winequality-red")


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(DataError, match="winequality-red"):
        datasets.fetch("titanic")


def test_download_is_checksum_verified(tmp_path, monkeypatch, cache):
    """A real HTTP download from a loopback server: good bytes pass, bad bytes are refused."""
    served = tmp_path / "served"
    served.mkdir()
    good = b"x;y\n3;4\n"
    (served / "good.csv").write_bytes(good)
    (served / "bad.csv").write_bytes(b"tampered\n")

    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        digest = hashlib.sha256(good).hexdigest()
        monkeypatch.setitem(
            datasets.DATASETS,
            "good",
            datasets.Dataset("good", "good.csv", f"{base}/good.csv", digest, "CC0", "none"),
        )
        monkeypatch.setitem(
            datasets.DATASETS,
            "bad",
            datasets.Dataset("bad", "bad.csv", f"{base}/bad.csv", digest, "CC0", "none"),
        )
        assert datasets.fetch("good").read_bytes() == good
        with pytest.raises(DataError, match="fresh download"):
            datasets.fetch("bad")
        assert not (cache / "bad.csv").exists(), "a corrupt download must not stay in the cache"
    finally:
        server.shutdown()


def test_unreachable_source_gives_advice(monkeypatch, cache):
    from mlops_course.runtime.processes import free_port

    url = f"http://127.0.0.1:{free_port()}/nothing.csv"
    monkeypatch.setitem(
        datasets.DATASETS,
        "gone",
        datasets.Dataset("gone", "gone.csv", url, "0" * 64, "CC0", "none"),
    )
    with pytest.raises(DataError, match=datasets.MIRROR_VARIABLE):
        datasets.fetch("gone")


def test_wine_data_from_the_shared_mirror(repo, tmp_path, monkeypatch, cache):
    """With the mirror CI uses, the real file passes its checksum and parses (1599 rows, 12 columns)."""
    mirror = Path(CONFIGURED_MIRROR) if CONFIGURED_MIRROR else repo.parent / "shared" / "data"
    if not (mirror / WINE.filename).exists():
        pytest.skip(f"no data mirror at {mirror}")
    monkeypatch.setenv(datasets.MIRROR_VARIABLE, str(mirror))
    frame = datasets.load_csv("winequality-red")
    assert frame.shape == (1599, 12) and "quality" in frame.columns
