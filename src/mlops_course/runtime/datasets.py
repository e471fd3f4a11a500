"""External datasets: a registry, a checksum-verified download cache and an offline mirror.

(Named ``datasets`` so that it never reads like ``mlflow.data``, which notebook 06 teaches.)

A dataset is downloaded once from its original URL into the cache and verified
with its sha256. When ``MLOPS_COURSE_DATA_MIRROR`` names a folder, the file is
read from there instead (CI and offline classrooms use it); the checksum is
verified either way. Datasets shipped with scikit-learn need none of this.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlops_course import paths
from mlops_course.runtime.errors import CourseError

__all__ = ["DATASETS", "DataError", "Dataset", "describe", "fetch", "load_csv", "sha256_of"]

MIRROR_VARIABLE = "MLOPS_COURSE_DATA_MIRROR"


class DataError(CourseError, RuntimeError):
    """A dataset is missing or corrupt; the message names the file and the fix."""


@dataclass(frozen=True)
class Dataset:
    """One external file the course uses, with where it comes from and how to cite it."""

    name: str
    filename: str
    url: str
    sha256: str
    licence: str
    citation: str
    read_options: tuple[tuple[str, object], ...] = ()


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            name="winequality-red",
            filename="winequality-red.csv",
            url=(
                "http://archive.ics.uci.edu/ml/machine-learning-databases/"
                "wine-quality/winequality-red.csv"
            ),
            sha256="4a402cf041b025d4566d954c3b9ba8635a3a8a01e039005d97d6a710278cf05e",
            licence="CC BY 4.0 (UCI Machine Learning Repository)",
            citation=(
                "P. Cortez, A. Cerdeira, F. Almeida, T. Matos and J. Reis. Modeling wine "
                "preferences by data mining from physicochemical properties. Decision Support "
                "Systems 47(4):547-553, 2009."
            ),
            read_options=(("sep", ";"),),
        ),
    )
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lookup(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DataError(f"Unknown dataset {name!r}; the course knows: {known}.") from None


def _verify(dataset: Dataset, path: Path, origin: str) -> Path:
    found = sha256_of(path)
    if found != dataset.sha256:
        raise DataError(
            f"{path} ({origin}) is corrupt: expected sha256 {dataset.sha256}, found {found}; "
            f"delete it and run again to download a fresh copy from {dataset.url}."
        )
    return path


def fetch(name: str) -> Path:
    """Return a verified local path to the dataset ``name``, downloading it at most once."""
    dataset = _lookup(name)
    target = paths.data_cache() / dataset.filename
    if target.exists():
        return _verify(dataset, target, "cached copy")

    mirror = os.environ.get(MIRROR_VARIABLE)
    if mirror:
        source = Path(mirror).expanduser() / dataset.filename
        if not source.exists():
            raise DataError(
                f"{dataset.filename} is not in the mirror folder {mirror} "
                f"(set by {MIRROR_VARIABLE}); copy it there or unset the variable to download it."
            )
        _verify(dataset, source, "mirror copy")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename: notebooks graded in parallel may fetch the same file at once.
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        return target

    import pooch  # imported here: most notebooks never download anything

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        downloaded = pooch.retrieve(
            dataset.url,
            known_hash=None,  # verified below, so the message can say what to do
            fname=dataset.filename,
            path=target.parent,
            progressbar=False,
        )
    except Exception as error:  # noqa: BLE001 - any network failure gets the same advice
        raise DataError(
            f"Could not download {dataset.filename} from {dataset.url} ({type(error).__name__}); "
            f"connect to the network once, or set {MIRROR_VARIABLE} to a folder that holds the file."
        ) from None
    path = Path(downloaded)
    try:
        return _verify(dataset, path, "fresh download")
    except DataError:
        path.unlink(missing_ok=True)  # a corrupt download is ours, not the student's: drop it
        raise


def load_csv(name: str):
    """Read a registered CSV dataset into a pandas DataFrame with its own read options."""
    import pandas as pd

    dataset = _lookup(name)
    return pd.read_csv(fetch(name), **dict(dataset.read_options))


def describe(name: str) -> str:
    """A one-paragraph citation block for the dataset, to print in a notebook."""
    dataset = _lookup(name)
    return (
        f"{dataset.filename}: {dataset.url}\nLicence: {dataset.licence}\nCite: {dataset.citation}"
    )
