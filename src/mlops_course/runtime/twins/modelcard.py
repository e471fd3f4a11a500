"""Model cards: a self-contained HTML page with a model's details, metrics and plots.

Notebook 10's model-card component imports :func:`render_model_card` (its container copies
this package), the way Google's Vertex MLOps template writes a card next to each model.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Mapping

__all__ = ["embedded_png_images", "figure_png", "render_model_card"]


def figure_png(figure) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    data = io.BytesIO()
    figure.savefig(data, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return data.getvalue()


def render_model_card(
    title: str,
    overview: Mapping[str, object],
    statistics: Mapping[str, float],
    figures: Mapping[str, bytes],
    notes: Iterable[str] = (),
) -> str:
    """A self-contained HTML model card: overview, performance statistics, plots as base64 PNG."""
    esc = html.escape
    rows = "".join(
        f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in overview.items()
    )
    stats = "".join(
        f"<tr><th>{esc(k)}</th><td>{v:.4f}</td></tr>"
        if isinstance(v, float)
        else f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
        for k, v in statistics.items()
    )
    images = "".join(
        f'<figure style="display:inline-block;margin:4px"><img alt="{esc(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'
        f"<figcaption>{esc(name)}</figcaption></figure>"
        for name, png in figures.items()
    )
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    style = "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{style}</style></head><body><h2>{esc(title)}</h2>"
        f"<h3>Model details</h3><table>{rows}</table>"
        f"<h3>Performance on validation data</h3><table>{stats}</table>"
        f"<h3>Plots</h3>{images}"
        + (f"<h3>Considerations</h3><ul>{items}</ul>" if items else "")
        + "</body></html>"
    )


_IMG = re.compile(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def embedded_png_images(page: str) -> list[bytes]:
    """The PNG images embedded in an HTML page (decoded); only real PNGs are returned."""
    images = []
    for encoded in _IMG.findall(page):
        data = base64.b64decode(encoded)
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            images.append(data)
    return images
