"""The evaluation report: `metrics.json` (stable schema), a log table and a one-file HTML.

metrics.json, schema_version 1::

    {
      "schema_version": 1,
      "run_id": str, "created_at": ISO-8601 UTC,
      "split": {"kind": str, ...its parameters, "summary": {split_summary counts}},
      "ks": [int, ...], "k": int,           # ranking cut-offs; beyond-accuracy cut-off
      "models": {model: {metric: float}},   # every metric, "users_evaluated" included
      "breakdowns": {model: {"by_activity": {bucket: {metric: float}},
                             "by_popularity": {bucket: {metric: float}}}},
      "curves": {model: {"longtail_x": [...], "longtail_recs": [...],
                         "longtail_train": [...], "lorenz_x": [...], "lorenz_y": [...]}},
      "tables": {name: location}             # the Delta tables evaluated
    }

Metric names: `<metric>_at_<K>` for precision, recall, hit_rate, mrr, ndcg, map at each
K; `map` (divided by |relevant|); `users_evaluated`; the coverage metrics of
`coverage.COVERAGE_METRICS`; `intra_list_diversity`, `serendipity`, `diversity_users`.
The HTML embeds its plots as base64 PNG, so it is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from recsys_spark.catalog.rules import RULE_NAMES

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SCHEMA_VERSION = 1
CURVE_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def summary_columns(ks: Sequence[int], k: int) -> list[str]:
    """The columns of the log table: MAP, the main K's accuracy, then coverage."""
    main = k if k in ks else max(ks)
    return [
        "map",
        f"ndcg_at_{main}",
        f"precision_at_{main}",
        f"recall_at_{main}",
        f"map_at_{main}",
        "catalog_coverage",
        "novelty",
        "gini",
        "users_evaluated",
    ]


def format_table(models: Mapping[str, Mapping[str, float]], columns: Sequence[str]) -> str:
    """A fixed-width text table: one row per model, one column per metric."""
    width = max([len("model"), *(len(m) for m in models)])
    head = "model".ljust(width) + "".join(f"  {c:>18}" for c in columns)
    lines = [head, "-" * len(head)]
    for model, values in models.items():
        cells = []
        for c in columns:
            v = values.get(c)
            if v is None:
                cells.append(f"  {'-':>18}")
            elif c.startswith(("users", "diversity_users")) or float(v).is_integer() and v > 1:
                cells.append(f"  {int(v):>18d}")
            else:
                cells.append(f"  {v:>18.6f}")
        lines.append(model.ljust(width) + "".join(cells))
    return "\n".join(lines)


def write_metrics_json(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report document as indented JSON (keys in insertion order)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return out


def write_html(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Write the self-contained HTML report of `doc` (the metrics.json document)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(doc))
    return out


def render_html(doc: Mapping[str, Any]) -> str:
    """The HTML report: tables of every metric and breakdown, plots as inline PNG."""
    models: Mapping[str, Mapping[str, float]] = doc["models"]
    ks: list[int] = list(doc["ks"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Evaluation {html.escape(str(doc.get('run_id', '')))}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
        "img{max-width:100%}</style></head><body>",
        "<h1>Recommendation evaluation</h1>",
        f"<p>run <code>{html.escape(str(doc.get('run_id')))}</code>, "
        f"{html.escape(str(doc.get('created_at')))}; K = {ks}, beyond-accuracy at "
        f"K = {doc.get('k')}</p>",
        "<h2>Split</h2>",
        _kv_table(doc.get("split", {})),
        "<h2>Summary</h2>",
        _metrics_table(models, summary_columns(ks, int(doc["k"]))),
        "<h2>Accuracy at each K</h2>",
        _img(_plot_at_k(models, ks)),
        "<h2>Long tail and exposure</h2>",
        _img(_plot_curves(doc.get("curves", {}))),
        "<h2>Coverage and novelty</h2>",
        _img(_plot_bars(models)),
        "<h2>Every metric</h2>",
        _metrics_table(models, sorted({m for v in models.values() for m in v})),
    ]
    examples = doc.get("examples")
    if examples:
        parts.append("<h2>Example users: history, recommendations and their reasons</h2>")
        parts.extend(_example(e) for e in examples)
    cold = doc.get("cold_items")
    if cold:
        parts.append(
            f"<h2>New items: {cold.get('items')} test items with fewer than "
            f"{cold.get('min_interactions')} training users, {cold.get('test_pairs')} test "
            "pairs</h2>"
        )
        models_cold = cold.get("models", {})
        columns = sorted({c for v in models_cold.values() for c in v})
        parts.append(_metrics_table(models_cold, columns))
    rules = doc.get("rules")
    if rules:
        parts.append("<h2>Business rules: candidates removed before each list was full</h2>")
        parts.append(_kv_table(rules.get("settings", {})))
        parts.append(_metrics_table(rules.get("removed", {}), RULE_NAMES))
    ranker = doc.get("ranker")
    if ranker:
        parts.append("<h2>Learned ranker: feature importance</h2>")
        parts.append(
            f"<p>trained on {ranker.get('train_users')} users, {ranker.get('train_rows')} "
            f"candidates from {html.escape(', '.join(ranker.get('sources', [])))}</p>"
        )
        parts.append(_img(_plot_importance(ranker.get("importance_gain", {}))))
    for model, parts_by in doc.get("breakdowns", {}).items():
        parts.append(f"<h2>Breakdowns: {html.escape(model)}</h2>")
        for name, table in parts_by.items():
            parts.append(f"<h3>{html.escape(name)}</h3>")
            parts.append(_metrics_table(table, sorted({m for v in table.values() for m in v})))
    parts.append("<h2>Tables</h2>")
    parts.append(_kv_table(doc.get("tables", {})))
    parts.append("</body></html>")
    return "\n".join(parts)


def _example(user: Mapping[str, Any]) -> str:
    history = ", ".join(html.escape(str(h)) for h in user.get("history", []))
    rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{html.escape(str(r['item']))}</td>"
        f"<td>{html.escape(str(r['because'] or '-'))}</td><td>{html.escape(r['source'])}</td></tr>"
        for r in user.get("recommendations", [])
    )
    return (
        f"<h3>{html.escape(str(user['user_id']))}</h3><p>newest history: {history}</p>"
        "<table><tr><th>rank</th><th>recommended</th><th>because of</th><th>source</th></tr>"
        f"{rows}</table>"
    )


def _kv_table(values: Mapping[str, Any]) -> str:
    rows = []
    for key, value in values.items():
        shown = _kv_table(value) if isinstance(value, Mapping) else html.escape(str(value))
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{shown}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _metrics_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str]) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
    body = []
    for name, values in rows.items():
        cells = "".join(
            f"<td>{values[c]:.4f}</td>" if c in values else "<td>-</td>" for c in columns
        )
        body.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return "<table>" + head + "".join(body) + "</table>"


def _img(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<img alt='plot' src='data:image/png;base64,{data}'>"


def _plot_at_k(models: Mapping[str, Mapping[str, float]], ks: list[int]) -> Any:
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, metric in zip(axes.flat, CURVE_METRICS, strict=True):
        for model, values in models.items():
            ys = [values.get(f"{metric}_at_{k}", float("nan")) for k in ks]
            ax.plot(ks, ys, marker="o", label=model)
        ax.set_title(f"{metric}@K")
        ax.set_xlabel("K")
        ax.grid(alpha=0.3)
    if models:
        axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_curves(curves: Mapping[str, Mapping[str, list[float]]]) -> Any:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    catalogue_drawn = False
    for model, c in curves.items():
        left.plot(c["longtail_x"], c["longtail_recs"], label=model)
        if not catalogue_drawn:
            left.plot(c["longtail_x"], c["longtail_train"], "k--", label="training interactions")
            catalogue_drawn = True
        gini = _gini_from_lorenz(c["lorenz_x"], c["lorenz_y"])
        right.plot(c["lorenz_x"], c["lorenz_y"], label=f"{model} (Gini {gini:.3f})")
    left.set_title("Long tail: items by training popularity vs share of recommendations")
    left.set_xlabel("share of catalogue items, most popular first")
    left.set_ylabel("cumulative share")
    right.plot([0, 1], [0, 1], color="grey", lw=0.8, label="equal exposure")
    right.set_title("Lorenz curve of item exposure")
    right.set_xlabel("share of items, least exposed first")
    right.set_ylabel("cumulative share of recommendations")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _gini_from_lorenz(xs: list[float], ys: list[float]) -> float:
    area = sum(
        (x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False)
    )
    return 1.0 - 2.0 * area


def _plot_importance(gain: Mapping[str, float]) -> Any:
    """Total gain per feature of the learned ranker, largest first."""
    names = sorted(gain, key=lambda f: -gain[f])
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1))
    ax.barh(names[::-1], [gain[f] for f in names[::-1]], color="C2")
    ax.set_xlabel("total gain")
    fig.tight_layout()
    return fig


def _plot_bars(models: Mapping[str, Mapping[str, float]]) -> Any:
    names = list(models)
    panels = ("catalog_coverage", "user_coverage", "novelty", "long_tail_share")
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 4))
    for ax, metric in zip(axes, panels, strict=True):
        ax.bar(names, [models[m].get(metric, 0.0) for m in names], color="C0")
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    return fig
