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
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from fastadapt.config import Checks, ConfigError, Settings, check_keys

MIXED_COLUMNS = ["text", "label", "source"]


@dataclass(frozen=True)
class MixedSource(Settings):
    """One source of a mixed training set: which rows of which table, and how its labels map.

    name: the source's key in its parameter block (the last part of `where`); it labels its rows.
    table: the key of the table in `mixed_rows`'s `tables` (a domain's splits, the news stream);
      default: the name.
    splits: keep rows whose `split` column is one of these (tables without the column: all rows).
    source: keep rows whose `source` column equals this (the news stream mixes sources).
    date_from / date_until: keep rows with `date_column` in [date_from, date_until).
    """

    name: str
    where: str
    label_map: Mapping[str, str] = field(default_factory=dict)
    table: str | None = None
    splits: tuple[str, ...] = ("train",)
    source: str | None = None
    text_column: str = "text"
    date_column: str = "published_at"
    date_from: str | None = None
    date_until: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str) -> MixedSource:
        """The source `<block>.<name>` = `where`; `name` and `where` come from the key, not the YAML."""
        settings = [f.name for f in fields(cls) if f.name not in ("name", "where")]
        values = check_keys(params, settings, where)
        name = where.rsplit(".", 1)[-1]
        if isinstance(values.get("label_map"), Mapping):
            values["label_map"] = {str(k): str(v) for k, v in values["label_map"].items()}
        if isinstance(values.get("splits"), (list, tuple)):
            values["splits"] = tuple(map(str, values["splits"]))
        for key in ("date_from", "date_until"):  # YAML reads 2020-09-01 as a date
            if values.get(key) is not None:
                values[key] = str(values[key])
        source = cls(name=name, where=where, **{"table": name, **values})
        source.validate(where)
        return source

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        if not isinstance(self.label_map, Mapping) or not self.label_map:
            raise ConfigError(f"{where}.label_map must map each of the source's labels onto the model's labels, "
                              f"e.g. {{Bearish: negative, Bullish: positive, Neutral: neutral}}")
        for key in ("date_from", "date_until"):
            if getattr(self, key) is not None:
                try:
                    pd.Timestamp(getattr(self, key))
                except ValueError:
                    check.fail(key, "allowed: a date (YYYY-MM-DD) or null")
        if not isinstance(self.splits, tuple) or not self.splits:
            check.fail("splits", "allowed: a non-empty list, e.g. [train]")
        for key in ("table", "text_column", "date_column"):
            check.text(key)
        check.text("source", optional=True)

    def select(self, table: pd.DataFrame) -> pd.DataFrame:
        """This source's rows of `table` as (text, label, source), labels mapped."""
        where = self.where
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
    return [MixedSource.from_params(spec, f"{where}.{name}") for name, spec in params.items()]


def mixed_rows(tables: Mapping[str, pd.DataFrame], sources: Sequence[MixedSource]) -> pd.DataFrame:
    """Every source's rows (text, label, source), in the order the sources are given."""
    parts = []
    for source in sources:
        if source.table not in tables:
            raise ConfigError(f"{source.where}.table is '{source.table}'; "
                              f"available: {sorted(tables)}")
        parts.append(source.select(tables[source.table]))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MIXED_COLUMNS)
    return rows[MIXED_COLUMNS]
