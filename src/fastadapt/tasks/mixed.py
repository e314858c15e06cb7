"""Training rows mixed from several labelled sources onto one label set, each map explicit.

The finance sentiment model reads news (Financial PhraseBank), trader tweets (the financial
tweets corpus) and StockTwits posts (StockEmotions). Their label sets differ (negative / neutral /
positive, Bearish / Bullish / Neutral, bearish / bullish), so every source names its own
`label_map`; a label a map does not name is an error, never a silent guess. A dated source keeps
only rows in `[date_from, date_until)`, so a later date range stays unseen for the monitoring
check (PROTOCOL.md section 6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fastadapt.config import ConfigError

MIXED_COLUMNS = ["text", "label", "source"]
_KEYS = {"table", "label_map", "splits", "source", "text_column", "date_column", "date_from", "date_until"}


@dataclass(frozen=True)
class MixedSource:
    """One source of a mixed training set: which rows of which table, and how its labels map.

    table: the key of the table in `mixed_rows`'s `tables` (a domain's splits, the news stream).
    splits: keep rows whose `split` column is one of these (tables without the column: all rows).
    source: keep rows whose `source` column equals this (the news stream mixes sources).
    date_from / date_until: keep rows with `date_column` in [date_from, date_until).
    """

    name: str
    table: str
    label_map: Mapping[str, str]
    splits: tuple[str, ...] = ("train",)
    source: str | None = None
    text_column: str = "text"
    date_column: str = "published_at"
    date_from: str | None = None
    date_until: str | None = None
    _where: str = field(default="", repr=False)

    @classmethod
    def from_params(cls, name: str, params: Mapping[str, Any], where: str) -> MixedSource:
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where} must be a mapping of settings; got {params!r}")
        unknown = sorted(set(params) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {sorted(_KEYS)}")
        label_map = params.get("label_map")
        if not isinstance(label_map, Mapping) or not label_map:
            raise ConfigError(f"{where}.label_map must map each of the source's labels onto the model's labels, "
                              f"e.g. {{Bearish: negative, Bullish: positive, Neutral: neutral}}")
        for key in ("date_from", "date_until"):
            if params.get(key) is not None:
                try:
                    pd.Timestamp(str(params[key]))
                except ValueError:
                    raise ConfigError(f"{where}.{key} must be a date (YYYY-MM-DD); got {params[key]!r}") from None
        splits = params.get("splits", ["train"])
        if isinstance(splits, str) or not splits:
            raise ConfigError(f"{where}.splits must be a non-empty list, e.g. [train]; got {splits!r}")
        return cls(name=name, table=str(params.get("table", name)),
                   label_map={str(k): str(v) for k, v in label_map.items()}, splits=tuple(map(str, splits)),
                   source=params.get("source"), text_column=str(params.get("text_column", "text")),
                   date_column=str(params.get("date_column", "published_at")),
                   date_from=None if params.get("date_from") is None else str(params["date_from"]),
                   date_until=None if params.get("date_until") is None else str(params["date_until"]),
                   _where=where)

    def select(self, table: pd.DataFrame) -> pd.DataFrame:
        """This source's rows of `table` as (text, label, source), labels mapped."""
        where = self._where or self.name
        rows = table
        if "split" in rows.columns:
            rows = rows[rows["split"].isin(self.splits)]
        if self.source is not None:
            rows = rows[rows["source"] == self.source]
        if self.date_from is not None or self.date_until is not None:
            days = pd.to_datetime(rows[self.date_column])
            keep = pd.Series(True, index=rows.index)
            if self.date_from is not None:
                keep &= days >= pd.Timestamp(self.date_from)
            if self.date_until is not None:
                keep &= days < pd.Timestamp(self.date_until)
            rows = rows[keep]
        rows = rows[rows["label"].notna()]
        labels = rows["label"].astype(str)
        unmapped = sorted(set(labels) - set(self.label_map))
        if unmapped:
            raise ConfigError(f"{where}.label_map does not map the label(s) {unmapped} of source '{self.name}'; "
                              f"add them (mapped labels: {sorted(self.label_map)})")
        return pd.DataFrame({"text": rows[self.text_column].astype(str).to_numpy(),
                             "label": labels.map(self.label_map).to_numpy(), "source": self.name})


def parse_sources(params: Mapping[str, Any], where: str) -> list[MixedSource]:
    """`MixedSource`s from a `{name: settings}` parameter block."""
    if not isinstance(params, Mapping) or not params:
        raise ConfigError(f"{where} must map source names to their settings (table, label_map, ...)")
    return [MixedSource.from_params(str(name), spec, f"{where}.{name}") for name, spec in params.items()]


def mixed_rows(tables: Mapping[str, pd.DataFrame], sources: Sequence[MixedSource]) -> pd.DataFrame:
    """Every source's rows (text, label, source), in the order the sources are given."""
    parts = []
    for source in sources:
        if source.table not in tables:
            raise ConfigError(f"{source._where or source.name}.table is '{source.table}'; "
                              f"available: {sorted(tables)}")
        parts.append(source.select(tables[source.table]))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MIXED_COLUMNS)
    return rows[MIXED_COLUMNS]
