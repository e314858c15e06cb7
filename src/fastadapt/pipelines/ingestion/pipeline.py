"""`kedro run --pipeline ingestion`: every domain's raw files and the dated news stream."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from fastadapt.config import domain_configs, project_parameters
from fastadapt.pipelines.ingestion.nodes import (
    clean_domain,
    combine_stream,
    parse_domain,
    read_stream_source,
)
from fastadapt.pipelines.wiring import bind


def domain_ingestion(domain: str, raw: str) -> Pipeline:
    """Parse then clean one domain, namespaced `<domain>.`: raw folder in, rows and quarantine out."""
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
        parameters={"params:domain": f"params:domains.{domain}", "params:test_origins": "params:test_origins"},
    )


def stream_ingestion(sources: dict) -> Pipeline:
    """One reader node per stream source, then one combined, time-ordered table."""
    names = sorted(sources)
    readers = [
        Node(
            bind(read_stream_source, source=name),
            inputs=[f"raw.{sources[name]['raw']}", f"params:stream.sources.{name}"],
            outputs=f"stream.part_{name}",
            name=f"read_{name}_node",
            namespace="stream",
        )
        for name in names
    ]
    combine = Node(
        bind(combine_stream, sources=names),
        inputs=[f"stream.part_{name}" for name in names],
        outputs=["news_stream", "stream_quarantine", "stream_accounting"],
        name="combine_stream_node",
        namespace="stream",
    )
    return Pipeline([*readers, combine], tags=["cpu", "ingestion"])


def create_pipeline(**kwargs) -> Pipeline:
    parameters = project_parameters()
    pipeline = Pipeline([])
    for name, config in domain_configs(parameters).items():
        pipeline += domain_ingestion(name, config.raw)
    return pipeline + stream_ingestion(parameters["stream"]["sources"])
