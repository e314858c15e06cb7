"""What the broad meta-training defaults were chosen from: ablations over leave-one-domain-out folds.

Each variant changes the `meta_training.broad:` block of the chosen Kedro environment (sources on
or off, SMLMT on or off, class names, the step budget); for each variant and each fold a
meta-learner that never saw the fold is trained (`broad_meta_train_node`) and adapted on the
fold's k-shot draws with every strategy (`lodo_evaluate_node`, the pipeline's own nodes). The
pretrained encoder and TF-IDF + LR are scored once per fold on the same draws; every variant is
compared with the pretrained encoder under the same strategy, paired over the draws, with 95 %
t-intervals (`fastadapt.evaluation.lodo.lodo_differences`). Needs `kedro run` (ingestion and
features) first. Writes data/08_reporting/meta_ablation.md and meta_ablation.csv.

    python benchmarks/meta_ablation.py                                    # conf/base budgets, 2 folds
    python benchmarks/meta_ablation.py --folds customer_intent --variants default no_smlmt
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fastadapt.config import deep_merge

ROOT = Path(__file__).resolve().parents[1]


def variants(broad: Mapping[str, Any], meta_sources: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Variant name -> overrides merged into `meta_training.broad` (`default`: as configured)."""
    steps = int((broad.get("meta") or {}).get("max_steps", 100))
    seconds = int((broad.get("meta") or {}).get("max_seconds", 300))
    return {
        "default": {},
        "no_smlmt": {"weights": {"smlmt": 0.0}},
        "no_meta_corpora": {"weights": {name: 0.0 for name in meta_sources}},
        "no_label_names": {"label_names": False},
        "steps_x3": {"meta": {"max_steps": 3 * steps, "max_seconds": 3 * seconds}},
    }


def ablation_table(results: pd.DataFrame, pretrained: pd.DataFrame) -> pd.DataFrame:
    """Per variant, fold, strategy, k: mean accuracy, the pretrained encoder's, and the paired difference."""
    from fastadapt.evaluation.lodo import lodo_differences

    rows = []
    for variant, part in results.groupby("variant", sort=False):
        diff = lodo_differences(pd.concat([part.drop(columns="variant"), pretrained], ignore_index=True))
        diff = diff[diff["against"] == "pretrained"]
        means = part.groupby(["fold", "strategy", "k"])["accuracy"].mean()
        base = pretrained[pretrained["model"] == "pretrained"].groupby(["fold", "strategy", "k"])["accuracy"].mean()
        for row in diff.itertuples(index=False):
            key = (row.fold, row.strategy, row.k)
            rows.append({"variant": variant, "fold": row.fold, "strategy": row.strategy, "k": row.k,
                         "meta-trained": means[key], "pretrained": base[key],
                         "difference (points)": 100 * row.mean_difference,
                         "95 % CI (points)": f"[{100 * row.ci_low:+.1f}, {100 * row.ci_high:+.1f}]",
                         "verdict": row.verdict})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="base", help="the Kedro environment whose parameters are varied")
    parser.add_argument("--folds", nargs="+", default=["customer_intent", "finance_sentiment"])
    parser.add_argument("--variants", nargs="+", default=None, help="names from `variants()`; default: all")
    parser.add_argument("--strategies", nargs="+", default=None, help="default: the environment's")
    parser.add_argument("--ks", nargs="+", type=int, default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None, help="the default variant's step budget")
    parser.add_argument("--max-seconds", type=int, default=None, help="the default variant's time budget")
    parser.add_argument("--output", default=str(ROOT / "data" / "08_reporting"))
    args = parser.parse_args(argv)
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from fastadapt.config import meta_source_configs
    from fastadapt.evaluation.report import markdown_table
    from fastadapt.pipelines.meta_training.broad_nodes import (
        broad_meta_train_node,
        lodo_evaluate_node,
        text_domain_names,
    )

    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT, env=None if args.env == "base" else args.env) as session:
        context = session.load_context()
        params, catalog = context.params, context.catalog
    domains, meta_sources = text_domain_names(params), list(meta_source_configs(params))
    tables = {f"{name}_splits": catalog.load(f"{name}.splits") for name in [*domains, *meta_sources]}
    pool = catalog.load("unlabelled_pool")
    base = dict(params["meta_training"])
    budget = {k: v for k, v in {"max_steps": args.max_steps, "max_seconds": args.max_seconds}.items() if v}
    base["broad"] = deep_merge(base["broad"], {"meta": budget})
    evaluation = {**(base["broad"].get("evaluation") or {}),
                  **{k: v for k, v in {"strategies": args.strategies, "ks": args.ks, "seeds": args.seeds}.items() if v}}
    chosen = variants(base["broad"], meta_sources)
    names = args.variants or list(chosen)
    unknown = sorted(set(names) - set(chosen))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; known: {list(chosen)}")

    started, results, peers, runs = time.perf_counter(), [], [], []
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / "meta_ablation.md"

    def write_report() -> str:
        """The report of the runs finished so far (rewritten after each: a long run is readable early)."""
        done, scored_peers = pd.concat(results, ignore_index=True), pd.concat(peers, ignore_index=True)
        everything = pd.concat([done, scored_peers.assign(variant="-")], ignore_index=True)
        means = everything.groupby(["fold", "variant", "model", "strategy", "k"])["accuracy"].mean()
        lines = ["# Meta-training ablations (leave one domain out)", "",
                 f"- environment `{args.env}`, folds {args.folds}, variants {names}; evaluation {evaluation}",
                 "- each variant: `meta_training.broad` of that environment with the overrides below; the pretrained "
                 "encoder and TF-IDF + LR on the same draws, scored once per fold",
                 *[f"  - `{n}`: {chosen[n] or 'as configured'}" for n in names],
                 f"- machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, load average "
                 f"{os.getloadavg()[0]:.1f}; {time.perf_counter() - started:.0f} s so far, "
                 f"{len(runs)} of {len(names) * len(args.folds)} runs", "",
                 "## Meta-training runs", "", markdown_table(pd.DataFrame(runs), "{:.3f}"),
                 "## Meta-trained minus pretrained (same strategy, paired over the draws)", "",
                 markdown_table(ablation_table(done, scored_peers), "{:.3f}"),
                 "## Mean accuracy per arm and k", "", markdown_table(means.unstack("k").reset_index(), "{:.3f}")]
        everything.to_csv(output / "meta_ablation.csv.tmp", index=False)
        (output / "meta_ablation.md.tmp").write_text("\n".join(lines) + "\n")
        for name in ("meta_ablation.csv", "meta_ablation.md"):
            os.replace(output / f"{name}.tmp", output / name)
        return "\n".join(lines)

    for fold in args.folds:
        if fold not in domains:
            parser.error(f"--folds: '{fold}' is not a text-classification domain of this project ({domains})")
        splits, kshot_sets = catalog.load(f"{fold}.splits"), catalog.load(f"{fold}.kshot_sets")
        for index, name in enumerate(names):
            broad = deep_merge(base["broad"], {**chosen[name], "folds": [fold], "evaluation": evaluation})
            variant_params = {**base, "broad": broad}
            model, _history = broad_meta_train_node(variant_params, domains, fold, unlabelled_pool=pool, **tables)
            scored = lodo_evaluate_node(model, splits, kshot_sets, variant_params, params["new_task"]["strategies"],
                                        params["baselines"]["tfidf"], domains, fold, peers=index == 0)
            peers.append(scored[scored["model"] != "meta_trained"])
            results.append(scored[scored["model"] == "meta_trained"].assign(variant=name))
            runs.append({"variant": name, "fold": fold, **{k: model.info[k] for k in
                         ("steps", "seconds", "stop_reason", "initial_val_accuracy", "best_val_accuracy")},
                         "sources": len(model.info["sources"])})
            report = write_report()
    print(report)
    print(f"written: {path}")
    return path


if __name__ == "__main__":
    main()
