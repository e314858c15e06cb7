"""Ingestion nodes: raw bytes in, typed tables and quarantine out, with the rows accounted for."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import pandas as pd

from fastadapt.config import DomainConfig
from fastadapt.readers import SourceSpec, read_raw
from fastadapt.readers.quarantine import AccountingError, ReadResult, concat_results, quarantine_frame
from fastadapt.tasks.cleaning import deduplicate, ner_key_and_label, overlap_with_training

log = logging.getLogger(__name__)


def parse_domain(
    raw_files: Mapping[str, bytes], domain_params: Mapping[str, Any], domain: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse a domain's raw files with its configured reader; bad records go to quarantine."""
    config = DomainConfig.from_params(domain, domain_params)
    result = read_raw(config.reader, raw_files, config.reader_options, domain)
    log.info("%s: %s", domain, result.accounting(domain))
    return result.rows, result.quarantine


def clean_domain(
    parsed_rows: pd.DataFrame,
    parse_quarantine: pd.DataFrame,
    domain_params: Mapping[str, Any],
    test_origins: list[str],
    domain: str,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Deduplicate training material (PROTOCOL.md section 0) and account for every record."""
    config = DomainConfig.from_params(domain, domain_params)
    key = label = None
    if config.kind == "ner":
        key, label = ner_key_and_label(parsed_rows)
    kept, dedup_quarantine = deduplicate(
        parsed_rows, domain, set(test_origins), key=key, label=label
    )
    quarantine = quarantine_frame(
        pd.concat([parse_quarantine, dedup_quarantine], ignore_index=True).to_dict("records")
    )
    n_in = len(parsed_rows) + len(parse_quarantine)
    result = ReadResult(rows=kept, quarantine=quarantine, n_in=n_in).check(domain)
    accounting = result.accounting(domain)
    accounting["test_overlap"] = overlap_with_training(parsed_rows, set(test_origins), key=key, label=label)
    accounting["rows_out_by_origin"] = {
        str(k): int(v) for k, v in kept["origin"].value_counts().sort_index().items()
    }
    log.info("%s accounting: %s", domain, accounting)
    return kept, quarantine, accounting


def read_source(raw_files: Mapping[str, bytes], source_params: Mapping[str, Any], source: str,
                group: str) -> ReadResult:
    """Read one source of a multi-source table (the news stream, the dialogue logs)."""
    spec = SourceSpec.from_params(source_params, where=f"{group}.sources.{source}")
    return read_raw(spec.reader, raw_files, spec.reader_options or {}, source)


def combine_sources(
    *parts: ReadResult, sources: list[str], group: str, sort_by: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One table from all sources, sorted by `sort_by`, with per-source and total accounting."""
    combined = concat_results(list(parts)).check(group)
    table = combined.rows.sort_values([*sort_by, "row_id"], kind="stable").reset_index(drop=True)
    table["row_id"] = range(len(table))
    per_source = [part.accounting(source) for source, part in zip(sources, parts)]
    totals = combined.accounting(group)
    if totals["rows_in"] != sum(p["rows_in"] for p in per_source):
        raise AccountingError(f"{group}: per-source counts do not add up to the total")
    return table, combined.quarantine, {"total": totals, "sources": per_source}
