"""`kedro run --pipeline ingestion`: every domain's raw files and the dated news stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.config import domain_configs, meta_source_configs
from fastadapt.pipelines.ingestion.nodes import (
    clean_domain,
    combine_sources,
    parse_domain,
    read_source,
)
from fastadapt.pipelines.wiring import bind, from_run_parameters


def domain_ingestion(domain: str, raw: str, block: str = "domains") -> Pipeline:
    """Parse then clean one domain (or meta-training source of `block`), namespaced `<domain>.`:
    raw folder in, rows and quarantine out."""
    template = Pipeline(
        [
            Node(
                bind(parse_domain, domain=domain),
                inputs=["raw_files", "params:domain"],
                outputs=["parsed_rows", "parse_quarantine"],
                name="parse_raw_node",
            ),
            Node(
                bind(clean_domain, domain=domain),
                inputs=["parsed_rows", "parse_quarantine", "params:domain", "params:test_origins"],
                outputs=["rows", "quarantine", "ingestion_accounting"],
                name="clean_rows_node",
            ),
        ],
        tags=["cpu", "ingestion"],
    )
    return Pipeline(
        template,
        namespace=domain,
        inputs={"raw_files": f"raw.{raw}"},
        parameters={"params:domain": f"params:{block}.{domain}", "params:test_origins": "params:test_origins"},
    )


def multi_source_ingestion(group: str, sources: dict, outputs: list[str], sort_by: list[str]) -> Pipeline:
    """One reader node per source of `group`, then one combined table with its accounting."""
    names = sorted(sources)
    readers = [
        Node(
            bind(read_source, source=name, group=group),
            inputs=[f"raw.{sources[name]['raw']}", f"params:{group}.sources.{name}"],
            outputs=f"{group}.part_{name}",
            name=f"read_{name}_node",
            namespace=group,
        )
        for name in names
    ]
    combine = Node(
        bind(combine_sources, sources=names, group=group, sort_by=sort_by),
        inputs=[f"{group}.part_{name}" for name in names],
        outputs=outputs,
        name=f"combine_{group}_node",
        namespace=group,
    )
    return Pipeline([*readers, combine], tags=["cpu", "ingestion"])


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    pipeline = Pipeline([])
    for name, config in domain_configs(parameters).items():
        pipeline += domain_ingestion(name, config.raw)
    for name, config in meta_source_configs(parameters).items():
        pipeline += domain_ingestion(name, config.raw, block="meta_sources")
    pipeline += multi_source_ingestion(
        "stream", parameters["stream"]["sources"], ["news_stream", "stream_quarantine", "stream_accounting"],
        sort_by=["published_at", "source"],
    )
    if parameters.get("dialogue_logs", {}).get("sources"):
        pipeline += multi_source_ingestion(
            "dialogue_logs", parameters["dialogue_logs"]["sources"],
            ["dialogue_turns", "dialogue_quarantine", "dialogue_accounting"],
            sort_by=["split", "conversation_id", "turn_index"],
        )
    return pipeline
