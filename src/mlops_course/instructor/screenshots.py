"""Screenshots of the real MLflow UI, taken on the stores the course's own notebooks wrote.

    mlops-course course --only 02 03     # executes the notebooks into build/course/<name>/
    mlops-course screenshots             # pictures into solutions/<name>/images/, then release

Each picture is Chromium (driven by playwright, Debian's ``/usr/bin/chromium``) looking at an
``mlflow server`` started on an executed notebook's own store, bound to 127.0.0.1 and stopped
when the pictures are taken. The notebooks embed the files, so when the course or MLflow
changes, running the two commands above brings the pictures up to date; the browser tests take
the same pictures on every CI run, so a change of the UI that breaks them is seen at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mlops_course.runtime.errors import CourseError

__all__ = ["CHROMIUM", "SHOTS", "Shot", "take"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 820}
WAIT_MS = 30_000


# The UI's chat assistant panel covers a third of the page: closed before every picture.
ASSISTANT_CLOSE = '[data-component-id="mlflow.assistant.chat_panel.close"]'
# The button that unfolds a parent run's children in the runs table.
EXPAND_CHILDREN = '[data-component-id*="runnamecellrenderer"]'


@dataclass(frozen=True)
class Page:
    """Where a picture is taken: the path after ``#``, a text that shows it is drawn, and what
    to click then (CSS selectors or ``text=`` selectors, in order)."""

    route: str
    ready_text: str
    clicks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shot:
    """One picture: the notebook whose store it shows, its file name and how to find the page."""

    notebook: str
    file: str
    what: str
    page: Callable[..., Page]  # called with an MlflowClient on the notebook's store


def _experiment(client, name: str):
    found = client.get_experiment_by_name(name)
    if found is None:
        raise CourseError(f"Expected an experiment {name!r} in the executed store, found none.")
    return found


def _sweep_runs(client) -> Page:
    experiment = _experiment(client, "tracking-sweep")
    return Page(f"/experiments/{experiment.experiment_id}/runs", "sweep", (EXPAND_CHILDREN,))


def _sweep_children(client) -> list:
    experiment = _experiment(client, "tracking-sweep")
    runs = client.search_runs(
        [experiment.experiment_id],
        "tags.mlflow.parentRunId != ''",
        order_by=["attributes.start_time ASC"],
        max_results=4,
    )
    if len(runs) < 2:
        raise CourseError(
            f"Expected at least two child runs in 'tracking-sweep', found {len(runs)}."
        )
    return runs


def _comparison(client) -> Page:
    runs = _sweep_children(client)
    ids = quote(json.dumps([r.info.run_id for r in runs]))
    experiments = quote(json.dumps([runs[0].info.experiment_id]))
    return Page(f"/compare-runs?runs={ids}&experiments={experiments}", runs[0].info.run_name)


def _artifacts(client) -> Page:
    """The artifacts tab of the newest run of 'tracking-basics' that logged a picture."""
    experiment = _experiment(client, "tracking-basics")
    for run in client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"]
    ):
        pictures = [
            f.path for f in client.list_artifacts(run.info.run_id) if f.path.endswith(".png")
        ]
        if pictures:
            route = f"/experiments/{experiment.experiment_id}/runs/{run.info.run_id}/artifacts"
            return Page(route, pictures[0], (f"text={pictures[0]}",))
    raise CourseError("Expected a run of 'tracking-basics' with a .png artifact, found none.")


def _registered_model(client) -> Page:
    """The registered model of 03 with its versions and aliases."""
    models = [m for m in client.search_registered_models() if m.aliases]
    if not models:
        raise CourseError(
            "Expected a registered model with aliases in the executed store, found none."
        )
    name = max(models, key=lambda m: (len(m.aliases), m.name)).name
    return Page(f"/models/{quote(name)}", "champion")


SHOTS: list[Shot] = [
    Shot(
        "02_experiment_tracking",
        "mlflow-runs.png",
        "the runs of the sweep, nested under their parent",
        _sweep_runs,
    ),
    Shot(
        "02_experiment_tracking",
        "mlflow-compare.png",
        "four runs of the sweep compared",
        _comparison,
    ),
    Shot(
        "02_experiment_tracking",
        "mlflow-artifacts.png",
        "a run's artifacts, with its figure",
        _artifacts,
    ),
    Shot(
        "03_models_registry_serving",
        "mlflow-registered-model.png",
        "a registered model's versions and aliases",
        _registered_model,
    ),
]


def _store(build_dir: Path, notebook: str) -> str:
    database = build_dir / notebook / "mlflow.db"
    if not database.is_file():
        raise CourseError(
            f"Expected the executed store {database} (run `mlops-course course --only {notebook[:2]}`"
            " first), found no such file."
        )
    return f"sqlite:///{database.resolve()}"


def take(build_dir: Path, out_dir: Callable[[str], Path], log_dir: Path) -> list[Path]:
    """Every picture of SHOTS from the stores under ``build_dir``; ``out_dir(notebook)`` says
    where a notebook's pictures go. Returns the files written."""
    from mlflow import MlflowClient
    from playwright.sync_api import sync_playwright

    from mlops_course.runtime import servers

    if not CHROMIUM.exists():
        raise CourseError(
            f"Expected Chromium at {CHROMIUM} (Debian's 'chromium' package), found none."
        )
    written: list[Path] = []
    by_notebook: dict[str, list[Shot]] = {}
    for shot in SHOTS:
        by_notebook.setdefault(shot.notebook, []).append(shot)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for notebook, shots in by_notebook.items():
                uri = _store(build_dir, notebook)
                client = MlflowClient(tracking_uri=uri)
                with servers.tracking_server(uri, log_dir=log_dir / notebook) as server:
                    for shot in shots:
                        written.append(
                            _picture(
                                browser,
                                server.url,
                                shot.page(client),
                                out_dir(notebook) / shot.file,
                            )
                        )
        finally:
            browser.close()
    return written


def _picture(browser, url: str, page_spec: Page, target: Path) -> Path:
    page = browser.new_page(viewport=VIEWPORT)
    try:
        # The UI polls its API, so it never reaches "networkidle": wait for "load", then for text.
        page.goto(f"{url}/#{page_spec.route}", wait_until="load")
        page.get_by_text(page_spec.ready_text).first.wait_for(timeout=WAIT_MS)
        if page.locator(ASSISTANT_CLOSE).count():
            page.locator(ASSISTANT_CLOSE).first.click()
        for selector in page_spec.clicks:
            page.locator(selector).first.click(timeout=WAIT_MS)
        page.wait_for_timeout(1500)  # charts and tables finish drawing after their text shows
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=False)
    finally:
        page.close()
    _shrink(target)
    return target


def _shrink(path: Path) -> None:
    """A UI picture in 256 colours: a third of the bytes, no visible change (both the
    solutions and the release carry each picture)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256)
    small.save(path, optimize=True)
