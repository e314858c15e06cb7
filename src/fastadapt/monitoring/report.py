"""The morning report: one self-contained HTML page a person reads with their coffee.

What surged (alerts with their headlines and timelines), whether the model still fits the stream
(drift, and whether to retrain), and how far the alerts can be trusted (the StockEmotions check of
PROTOCOL.md section 6 and its shuffled-dates control). Figures are embedded as PNG data URIs, so
the file can be mailed or opened from the MLflow UI without its folder.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fastadapt.config import Checks, Settings
from fastadapt.monitoring.aggregate import ALL_ENTITY
from fastadapt.monitoring.plots import entity_timeline_figure
from fastadapt.monitoring.surge import ALERT_COLUMNS, SEVERITY_RANK, SurgeConfig


@dataclass(frozen=True)
class ReportSettings(Settings):
    """What the report shows (`monitoring.report`).

    - ``recent_days``: "today's" alerts are the windows ending in the stream's last days;
    - ``max_timelines``: timeline plots for the most severe alerting entities;
    - ``max_alert_rows``: rows of the full alerts table;
    - ``news_sources``: the sources whose alerts the report lists with their headlines.
    """

    recent_days: int = 7
    max_timelines: int = 12
    max_alert_rows: int = 200
    news_sources: tuple[str, ...] = field(default=("cnbc", "guardian"))

    def __post_init__(self) -> None:
        if isinstance(self.news_sources, list):
            object.__setattr__(self, "news_sources", tuple(self.news_sources))

    def validate(self, where: str = "monitoring.report") -> None:
        check = Checks(self, where)
        check.integer("recent_days", 1)
        check.integer("max_timelines", 0)
        check.integer("max_alert_rows", 0)
        if self.news_sources is not None and not (
                isinstance(self.news_sources, tuple) and all(isinstance(s, str) for s in self.news_sources)):
            check.fail("news_sources", "allowed: a list of stream sources")

_STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#666;font-size:.9em}.cards{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.7em 1em;min-width:220px;flex:1}
.card b{font-size:1.5em;display:block}.ok{background:#f0f9f0}.warn{background:#fff4e5}.bad{background:#fdecea}
table{border-collapse:collapse;width:100%;font-size:.88em;margin:.5em 0}
th,td{border-bottom:1px solid #eee;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.sev-high{color:#fff;background:#d7301f;border-radius:3px;padding:0 .4em}
.sev-medium{background:#fc8d59;border-radius:3px;padding:0 .4em}
.sev-low{background:#fdd49e;border-radius:3px;padding:0 .4em}
ul.headlines{margin:0;padding-left:1.1em}img{max-width:100%;border:1px solid #eee}
details{margin:.5em 0}code{background:#f5f5f5;padding:0 .2em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * float(value):.0f} %"


def figure_data_uri(figure: Figure, dpi: int = 90) -> str:
    """A figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _severity(value: Any) -> str:
    value = _e(value)
    return f'<span class="sev-{value}">{value}</span>'


def _headlines(value: Any) -> str:
    if value is None or (not isinstance(value, (list, tuple, np.ndarray))):
        return ""
    items = "".join(f"<li>{_e(h)}</li>" for h in list(value))
    return f'<ul class="headlines">{items}</ul>' if items else ""


def alerts_table(alerts: pd.DataFrame, timeline_files: Mapping[str, str] | None = None) -> str:
    """Alerts with their window, counts, shares, corrected p-value, severity and headlines."""
    if alerts.empty:
        return "<p>No alerts.</p>"
    timeline_files = timeline_files or {}
    rows = []
    for alert in alerts.itertuples(index=False):
        entity = _e(alert.entity)
        if str(alert.entity) in timeline_files:
            entity = f'<a href="#timeline-{_e(timeline_files[str(alert.entity)])}">{entity}</a>'
        window = _e(alert.window_start) if alert.window_start == alert.window_end else \
            f"{_e(alert.window_start)} – {_e(alert.window_end)}"
        repeats = int(alert.n_absorbed) if pd.notna(alert.n_absorbed) else 0
        if repeats:
            window += f"<br><small>+{repeats} repeat(s) to {_e(alert.last_absorbed_end)}</small>"
        rows.append([
            entity, window, _num(alert.n), _num(alert.n_negative),
            f"{_pct(alert.observed_share)} vs {_pct(alert.expected_share)}", _num(alert.ratio, 2),
            _num(alert.p_adjusted, 4), _severity(alert.severity), _headlines(alert.headlines),
        ])
    return _table(["entity", "window", "items", "negative", "share vs baseline", "ratio", "p (corrected)",
                   "severity", "most negative headlines"], rows, numeric=(2, 3, 5, 6))


def _recent(alerts: pd.DataFrame, last_day: pd.Timestamp | None, days: int) -> pd.DataFrame:
    if alerts.empty or last_day is None:
        return alerts
    first = (last_day - pd.Timedelta(days=days - 1)).strftime("%Y-%m-%d")
    return alerts[alerts["window_end"].astype(str) >= first]


def news_alerts(alerts: pd.DataFrame, scored_stream: pd.DataFrame, sources: Sequence[str],
                entity_column: str = "entities") -> pd.DataFrame:
    """The alerts of entities that headlines from the news `sources` mention (not `__all__`)."""
    if alerts.empty or not sources or "source" not in scored_stream.columns \
            or entity_column not in scored_stream.columns:
        return alerts.iloc[:0]
    news = scored_stream[scored_stream["source"].isin(list(sources))]
    mentioned = {str(e) for cell in news[entity_column] if isinstance(cell, (list, tuple, np.ndarray)) for e in cell}
    return alerts[alerts["entity"].astype(str).isin(mentioned)]


def _drift_section(drift: Mapping[str, Any]) -> str:
    if not drift:
        return "<p>Drift was not tested.</p>"
    windows = drift.get("windows") or {}
    parts = [f"<p><b>{_e(drift.get('reason', ''))}</b></p>"]
    if windows.get("reference"):
        parts.append(
            f"<p class='meta'>Reference window {_e(windows['reference'][0])} – {_e(windows['reference'][1])} "
            f"({_num(windows.get('n_reference'))} items); current window {_e(windows['current'][0])} – "
            f"{_e(windows['current'][1])} ({_num(windows.get('n_current'))} items).</p>"
        )
    rows = []
    embedding = drift.get("embedding")
    if embedding:
        rows.append(["embeddings (" + _e(drift.get("embedder")) + ")", f"MMD² {_num(embedding['mmd2'], 4)}",
                     _num(embedding["p_value"], 4), _num(drift.get("level_per_test"), 4),
                     "drift" if drift.get("embedding_drift") else "no drift",
                     f"{embedding['n_reference']} vs {embedding['n_current']} texts, "
                     f"{embedding['n_permutations']} permutations"])
    labels = drift.get("labels")
    if labels:
        rows.append(["predicted labels", f"total variation {_num(labels['total_variation'], 3)}",
                     _num(labels["p_value"], 4), _num(drift.get("level_per_test"), 4),
                     "shift" if drift.get("label_shift") else "no shift",
                     f"chi² {_num(labels['chi2'], 2)}, dof {labels['dof']}"])
    if rows:
        parts.append(_table(["test", "statistic", "p-value", "level", "verdict", "detail"], rows, numeric=(2, 3)))
    if labels:
        names = sorted(set(labels["reference_distribution"]) | set(labels["current_distribution"]))
        parts.append(_table(
            ["predicted label", "reference share", "current share"],
            [[_e(n), _pct(labels["reference_distribution"].get(n, 0.0)),
              _pct(labels["current_distribution"].get(n, 0.0))] for n in names], numeric=(1, 2)))
    for key in ("note", "label_note"):
        if drift.get(key):
            parts.append(f"<p class='meta'>{_e(drift[key])}</p>")
    return "".join(parts)


def _date_range(check: Mapping[str, Any]) -> str:
    start, end = check.get("date_from"), check.get("date_until")
    if start is None and end is None:
        return ""
    return (f", dated from {_e(start or 'the start')} to before {_e(end or 'the end')}: the range the "
            f"sentiment model was not trained on")


def _check_section(check: Mapping[str, Any]) -> str:
    if not check or check.get("status") != "checked":
        return f"<p>{_e((check or {}).get('reason', 'The labelled check did not run.'))}</p>"
    agreement = check.get("item_agreement") or {}
    rows = [
        ["precision (predicted surge days that are gold surge days)", _num(check.get("precision"))],
        ["recall (gold surge days found)", _num(check.get("recall"))],
        ["gold surge days / predicted surge days", f"{_num(check.get('n_gold'))} / {_num(check.get('n_predicted'))}"],
        ["hits / gold days found", f"{_num(check.get('hits'))} / {_num(check.get('gold_found'))}"],
        ["windows tested", _num(check.get("n_tests"))],
        [f"alerts with each ticker's dates shuffled (rng({check.get('control_seed')})): gold labels",
         _num(check.get("control_alerts_gold"))],
        ["… the same control on the model's labels", _num(check.get("control_alerts_predicted"))],
        [f"items labelled {_e(check.get('gold_negative_label'))} / predicted {_e(check.get('predicted_negative_label'))}",
         f"{_pct(agreement.get('gold_negative_share'))} / {_pct(agreement.get('predicted_negative_share'))}"],
        [f"predicted {_e(check.get('predicted_negative_label'))} among gold {_e(check.get('gold_negative_label'))} "
         "items / among the others",
         f"{_pct(agreement.get('predicted_negative_given_gold_negative'))} / "
         f"{_pct(agreement.get('predicted_negative_given_gold_other'))}"],
    ]
    intro = (
        f"<p>On {_num(check.get('n_items'))} labelled {_e(check.get('source'))} posts ({_num(check.get('n_entities'))} "
        f"tickers{_date_range(check)}), the surge test was run once on the gold labels and once on the model's labels; a predicted "
        f"surge day within {check.get('tolerance_days')} day(s) of a gold one of the same ticker is a hit "
        f"(PROTOCOL.md section 6). The control shows how many alerts the test raises when the labels carry no "
        f"time structure.</p>"
    )
    notes = []
    recall, precision = check.get("recall"), check.get("precision")
    given_negative = agreement.get("predicted_negative_given_gold_negative")
    if recall is not None and recall < 0.5 and given_negative is not None:
        notes.append(
            f"<b>Most gold surges are missed</b> (recall {_num(recall, 2)}): the model labels "
            f"{_pct(given_negative)} of the {_e(check.get('gold_negative_label'))} posts "
            f"{_e(check.get('predicted_negative_label'))}, against "
            f"{_pct(agreement.get('predicted_negative_given_gold_other'))} of the others, so a surge of "
            f"{_e(check.get('gold_negative_label'))} posts hardly moves its labels on this source. A model adapted "
            f"to this kind of text would see more of them."
        )
    if precision is not None and precision < 0.5:
        notes.append(f"<b>Most predicted surges are not gold ones</b> (precision {_num(precision, 2)}).")
    if check.get("n_predicted") == 0:
        notes.append("The model's labels raised no surge at all on this source.")
    extra = "".join(f"<p>{note}</p>" for note in notes)
    return intro + _table(["", ""], rows, numeric=(1,)) + extra


def _stream_section(scored: pd.DataFrame, daily: pd.DataFrame, days: int = 14) -> str:
    parts = []
    if "source" in scored.columns and not scored.empty:
        dates = pd.to_datetime(scored["published_at"])
        per_source = scored.assign(_d=dates).groupby("source").agg(n_items=("row_id", "size"), first=("_d", "min"),
                                                                    last=("_d", "max"))
        parts.append(_table(["source", "items", "first", "last"], [
            [_e(s), _num(int(r.n_items)), _e(r.first.date()), _e(r.last.date())] for s, r in per_source.iterrows()
        ], numeric=(1,)))
    overall = daily[daily["entity"] == ALL_ENTITY].sort_values("day").tail(days)
    if not overall.empty:
        parts.append(f"<p class='meta'>All news, the last {len(overall)} days:</p>")
        parts.append(_table(["day", "items", "negative", "negative share", "mean negative score"], [
            [_e(pd.Timestamp(r.day).date()), _num(int(r.n)), _num(int(r.n_negative)), _pct(r.negative_share),
             _num(r.mean_score)] for r in overall.itertuples(index=False)
        ], numeric=(1, 2, 3, 4)))
    return "".join(parts)


def render_report(
    scored_stream: pd.DataFrame,
    daily: pd.DataFrame,
    alerts: pd.DataFrame,
    drift: Mapping[str, Any],
    labelled_check: Mapping[str, Any],
    scoring_stats: Mapping[str, Any],
    timelines: Mapping[str, Figure],
    timeline_files: Mapping[str, str] | None = None,
    surge: SurgeConfig | None = None,
    settings: ReportSettings | None = None,
    mlflow_run_id: str | None = None,
) -> str:
    """The report as one HTML string (see the module docstring)."""
    settings = settings or ReportSettings()
    surge = surge or SurgeConfig()
    recent_days, max_rows = settings.recent_days, settings.max_alert_rows
    dates = pd.to_datetime(scored_stream["published_at"]) if len(scored_stream) else pd.Series(dtype="datetime64[ns]")
    last_day = dates.max().normalize() if len(dates) else None
    recent = _recent(alerts, last_day, recent_days)
    severities = recent["severity"].value_counts().to_dict() if len(recent) else {}
    retrain = bool(drift.get("retraining_recommended")) if drift else False
    check = labelled_check or {}
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    run_id = mlflow_run_id

    cards = [
        f'<div class="card {"bad" if severities.get("high") else "warn" if len(recent) else "ok"}">'
        f"<b>{len(recent)}</b>alert(s) in the last {recent_days} days "
        f"({severities.get('high', 0)} high, {severities.get('medium', 0)} medium, {severities.get('low', 0)} low)</div>",
        f'<div class="card {"warn" if retrain else "ok"}"><b>{"Retrain" if retrain else "No retraining"}</b>'
        f"{'recommended: the stream drifted' if retrain else 'needed: no significant drift'}</div>",
        f'<div class="card"><b>{_num(check.get("precision"), 2)} / {_num(check.get("recall"), 2)}</b>'
        f"precision / recall of the alerts on labelled {_e(check.get('source', ''))} posts; "
        f"{_num(check.get('control_alerts_gold'))} alert(s) on the shuffled control</div>",
    ]

    timeline_html = []
    for entity, figure in timelines.items():
        anchor = _e((timeline_files or {}).get(entity, entity))
        timeline_html.append(
            f'<figure id="timeline-{anchor}"><img alt="timeline of {_e(entity)}" src="{figure_data_uri(figure)}">'
            f"<figcaption class='meta'>{_e(entity)}: items per day (bars; negatives darker), the day's negative "
            f"share (dots), the {surge.baseline_days}-day baseline the test compares with (dashed), alert "
            f"episodes shaded by severity. File: timelines/{anchor}</figcaption></figure>"
        )

    config_rows = [[_e(k), _e(v)] for k, v in asdict(surge).items()]
    model = scoring_stats.get("model_dataset") or scoring_stats.get("model")
    shown = alerts.head(max_rows)
    news_sources = [str(s) for s in settings.news_sources or []]
    news = news_alerts(alerts, scored_stream, news_sources)
    registered = scoring_stats.get("registered_model") or {}
    if registered.get("version"):
        aliases = ", ".join(registered.get("aliases") or []) or "no alias now"
        cards.insert(0, f'<div class="card" id="scoring-model"><b>{_e(registered["name"])} v{_e(registered["version"])}</b>'
                        f"the registered model version that scored the stream ({_e(aliases)}; "
                        f"{_e(str(registered.get('model_class') or scoring_stats.get('model')).rsplit('.', 1)[-1])})</div>")
    else:
        cards.insert(0, f'<div class="card" id="scoring-model"><b>{_e(model)}</b>the catalog model that scored the '
                        f"stream (not from the Model Registry)</div>")
    body = f"""
<h1>Monitoring report{f" — {_e(last_day.date())}" if last_day is not None else ""}</h1>
<p class="meta">Generated {_e(generated)} · model <code>{_e(model)}</code> ({_e(scoring_stats.get("model"))},
labels {_e(", ".join(map(str, scoring_stats.get("labels", []))))}; negative = <code>{_e(scoring_stats.get("negative_label"))}</code>)
· {_num(scoring_stats.get("n_items"))} headlines scored in {_num(scoring_stats.get("seconds"), 1)} s
({_num(scoring_stats.get("items_per_second"), 0)} / s){f" · MLflow run <code>{_e(run_id)}</code>" if run_id else ""}</p>
<div class="cards">{"".join(cards)}</div>

<h2>Alerts in the last {recent_days} days</h2>
<p class="meta">A surge is a day whose share of negative headlines about an entity is significantly above that
entity's own {surge.baseline_days}-day baseline (one-sided exact binomial test, {_e(surge.correction)}-corrected
across every entity and day tested, alpha {surge.alpha}); repeats within {surge.cooldown_days} days are folded
into the first alert. <code>__all__</code> is the whole stream.</p>
{alerts_table(recent, timeline_files)}

<h2>News alerts ({_e(", ".join(news_sources)) or "no news source"}): {len(news)}</h2>
<p class="meta">Every alert, over the whole stream, of an entity that the news headlines mention, with the
most negative headlines of its window.</p>
{alerts_table(news.head(max_rows), timeline_files) if len(news) else "<p>No alert on an entity of the news headlines.</p>"}

<h2>Timelines</h2>
{"".join(timeline_html) or "<p>No alerting entity.</p>"}

<h2>Drift: does the model still fit the stream?</h2>
{_drift_section(drift or {})}

<h2>How far to trust the alerts: the labelled check</h2>
{_check_section(check)}

<h2>All alerts ({len(alerts)})</h2>
<details{" open" if len(alerts) <= 20 else ""}><summary>{len(shown)} shown, newest first</summary>
{alerts_table(shown, timeline_files)}</details>

<h2>The stream</h2>
{_stream_section(scored_stream, daily)}

<h2>Settings of the surge test</h2>
<details><summary>SurgeConfig</summary>{_table(["setting", "value"], config_rows)}</details>
"""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>fastadapt monitoring{f' {last_day.date()}' if last_day is not None else ''}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def _file_name(entity: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", entity).strip("._") or "entity"
    name, i = f"{stem}.png", 1
    while name in taken:
        i += 1
        name = f"{stem}_{i}.png"
    taken.add(name)
    return name


def _alerts_for_plot(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alert episodes as windows from the first start to the last absorbed end."""
    if alerts.empty:
        return pd.DataFrame(columns=["entity", "window_start", "window_end", "severity"])
    end = alerts["last_absorbed_end"].where(alerts["last_absorbed_end"].notna(), alerts["window_end"])
    return pd.DataFrame({
        "entity": alerts["entity"].astype(str),
        "window_start": pd.to_datetime(alerts["window_start"]),
        "window_end": pd.to_datetime(end),
        "severity": alerts["severity"].astype(str),
    })


def timeline_figures(
    daily: pd.DataFrame, alerts: pd.DataFrame, surge: SurgeConfig, max_timelines: int
) -> tuple[dict[str, Figure], dict[str, str]]:
    """One timeline per alerting entity, most severe first: figures by file name, file names by entity."""
    plot_alerts = _alerts_for_plot(alerts)
    ranked = alerts.assign(_rank=alerts["severity"].map(SEVERITY_RANK).fillna(3))
    ranked = ranked.sort_values(["_rank", "p_adjusted", "window_end"], ascending=[True, True, False], kind="stable")
    entities = list(dict.fromkeys(ranked["entity"].astype(str)))[:max_timelines]
    figures, names, taken = {}, {}, set()
    daily_days = daily.assign(day=pd.to_datetime(daily["day"]))
    for entity in entities:
        name = _file_name(entity, taken)
        figures[name] = entity_timeline_figure(daily_days, plot_alerts, entity, surge,
                                               title=f"{entity}: negative share and alerts")
        names[entity] = name
    return figures, names


def morning_report(
    outputs: Mapping[str, Any], surge: SurgeConfig, settings: ReportSettings, mlflow_run_id: str | None = None
) -> tuple[str, dict[str, Figure]]:
    """The HTML report and its timeline figures (by file name) from the monitoring outputs.

    ``outputs`` holds ``scored_stream``, ``daily``, ``alerts``, ``drift``, ``labelled_check`` and
    ``scoring_stats``, as the monitoring pipeline makes them.
    """
    alerts = outputs["alerts"]
    alerts = alerts.reindex(columns=ALERT_COLUMNS) if len(alerts.columns) else pd.DataFrame(columns=ALERT_COLUMNS)
    figures, names = timeline_figures(outputs["daily"], alerts, surge, settings.max_timelines)
    html_page = render_report(
        scored_stream=outputs["scored_stream"], daily=outputs["daily"], alerts=alerts, drift=outputs["drift"],
        labelled_check=outputs["labelled_check"], scoring_stats=outputs["scoring_stats"],
        timelines={entity: figures[name] for entity, name in names.items()}, timeline_files=names,
        surge=surge, settings=settings, mlflow_run_id=mlflow_run_id,
    )
    return html_page, figures


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, float]]:
    flat: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif isinstance(value, (bool, np.bool_)) or isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            flat[name] = {"value": float(value), "step": 0}
    return flat


def _version_number(registered: Mapping[str, Any] | None) -> int | None:
    version = (registered or {}).get("version")
    return int(version) if version is not None and str(version).isdigit() else None


def monitoring_metrics(
    scoring_stats: Mapping[str, Any], alerts: pd.DataFrame, drift: Mapping[str, Any],
    labelled_check: Mapping[str, Any],
) -> dict[str, dict[str, float]]:
    """The run's headline figures for MLflow: throughput, alerts, drift and the labelled check."""
    severities = alerts["severity"].value_counts().to_dict() if "severity" in alerts.columns else {}
    metrics = {
        "items_scored": scoring_stats.get("n_items"),
        "model_version": _version_number(scoring_stats.get("registered_model")),
        "items_per_second": scoring_stats.get("items_per_second"),
        "alerts": len(alerts),
        "alerts_high": int(severities.get("high", 0)),
        "alerts_medium": int(severities.get("medium", 0)),
        "drift": {
            "retraining_recommended": bool(drift.get("retraining_recommended", False)),
            "embedding_drift": bool(drift.get("embedding_drift", False)),
            "label_shift": bool(drift.get("label_shift", False)),
            "mmd2": (drift.get("embedding") or {}).get("mmd2"),
            "mmd_p_value": (drift.get("embedding") or {}).get("p_value"),
            "label_p_value": (drift.get("labels") or {}).get("p_value"),
            "label_total_variation": (drift.get("labels") or {}).get("total_variation"),
        },
        "check": {k: labelled_check.get(k) for k in
                  ("precision", "recall", "n_gold", "n_predicted", "control_alerts_gold", "control_alerts_predicted")},
    }
    return _flatten({k: v for k, v in metrics.items() if v is not None})
