"""The reader registry: `read_raw` by name, and `SourceSpec`, the settings of one source of a
multi-source table, checked with errors that name the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fastadapt.config import ConfigError
from fastadapt.readers import READERS, SourceSpec, read_raw
from fastadapt.readers.quarantine import RawInputError

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"


def test_the_shipped_sources_are_valid():
    for group in ("stream", "dialogue_logs"):
        parameters = yaml.safe_load((CONF / f"parameters_{group}.yml").read_text())
        for name, params in parameters[group]["sources"].items():
            spec = SourceSpec.from_params(params, where=f"{group}.sources.{name}")
            assert spec.reader in READERS and spec.raw


@pytest.mark.parametrize(("params", "message"), [
    ({"raw": "headlines", "reader": "rss"}, r"^stream\.sources\.x\.reader is 'rss'; allowed: \["),
    ({"reader": "cnbc_headlines"}, r"^stream\.sources\.x\.raw is None; allowed: a non-empty string$"),
    ({"raw": "h", "reader": "cnbc_headlines", "reader_options": ["file"]},
     r"^stream\.sources\.x\.reader_options is \['file'\]; allowed: a mapping"),
    ({"raw": "h", "reader": "cnbc_headlines", "options": {}}, r"^stream\.sources\.x: unknown setting\(s\) \['options'\]"),
])
def test_bad_source_settings_name_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        SourceSpec.from_params(params, where="stream.sources.x")


def test_an_unknown_reader_name_lists_the_known_ones():
    with pytest.raises(RawInputError, match=r"^news: unknown reader 'rss'; allowed: \['cnbc_headlines'"):
        read_raw("rss", {}, {}, "news")
