"""Few-shot NER: tag-set extension on CoNLL-2003 (PROTOCOL.md section 4) and domain transfer to
the five CrossNER domains, written to `data/08_reporting/ner_few_shot.md` with a plot.

Stages (each reuses what the previous one saved under `data/06_models/ner_few_shot/` and
`data/07_model_output/ner_few_shot/`, so a stage can be rerun alone):

    python benchmarks/ner_few_shot.py pretrain     # source taggers: all CoNLL types, and one per held-out type
    python benchmarks/ner_few_shot.py evaluate     # every learner on the same greedy draws, rows to parquet
    python benchmarks/ner_few_shot.py casing       # CoNLL-2003 testb with and without casing features
    python benchmarks/ner_few_shot.py report       # the markdown report and the plot
    python benchmarks/ner_few_shot.py all --steps 3000    # conf/full-like budget (a GPU host)

Learners. Source taggers are MiniLM fine-tuned on CoNLL-2003 train (`pretrain_tagger`):
`source_all` on all four types (it never sees CrossNER, so it is the domain-transfer learner for
every CrossNER domain), `source_<T>` with type T relabelled O (tag-set extension fold T; the
leak check of `pretrain_tagger` guarantees T was never seen), and `source_lodo_<D>` on CoNLL-2003
train plus the train splits of the four CrossNER domains other than D (CoNLL's types under
CrossNER's names), the domain-transfer learner of `evaluate --domain-source lodo`. Each of them
can also be trained with CONTaiNER's contrastive token objective beside the cross-entropy
(`pretrain --token-contrastive 1.0`, saved as `source_<fold>_ctr`; `evaluate --variant ctr`). On
each support draw (greedy, k mentions per type, `draw_ner_kshot`) we compare, on the same draws:
  nnshot / structshot         on the source tagger's encoder (StructShot: source transitions)
  *_lodo                      the same learners on `source_lodo_<D>` (CrossNER domain D)
  *_ctr                       the same learners on the source taggers trained with the objective
  head_source                 a linear token head on the source encoder's frozen features
  full_source                 fine-tuning the source encoder with a fresh head (finetune_all)
  prototype_minilm / head_minilm   the strategies new_task had before, on plain MiniLM
Test features are computed once per encoder and reused by every frozen-encoder learner and draw.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "01_raw"
MODELS = ROOT / "data" / "06_models" / "ner_few_shot"
OUTPUT = ROOT / "data" / "07_model_output" / "ner_few_shot"
REPORT = ROOT / "data" / "08_reporting" / "ner_few_shot.md"
CONLL_TYPES = ["LOC", "MISC", "ORG", "PER"]
CROSSNER = ["politics", "science", "music", "literature", "ai"]
# CoNLL-2003's types under the names CrossNER gives the same types, so one head learns each once.
CONLL_TO_CROSSNER = {"PER": "person", "LOC": "location", "ORG": "organisation", "MISC": "misc"}
LODO_PREFIX = "lodo_"
# Source taggers trained with CONTaiNER's contrastive token objective beside the cross-entropy
# (`pretrain --token-contrastive W`) are saved as `source_<fold>_ctr` (`--variant NAME`: `_NAME`, for
# an ablation) and evaluated with `--variant ctr`.
CONTRASTIVE_VARIANT = "ctr"


def variant_suffix(variant: str) -> str:
    """The saved source taggers' suffix of a `--variant` (none for `plain`)."""
    return "" if variant == "plain" else f"_{variant}"


def read_conll_split(split: str) -> pd.DataFrame:
    from fastadapt.readers.conll import read_conll

    names = {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"}
    files = {names[split]: (RAW / "conll2003" / names[split]).read_bytes()}
    rows = read_conll(files, {"splits": {split: names[split]}, "scheme": "iob1"}, "conll2003").rows
    return rows.assign(row_id=np.arange(len(rows)))


def read_crossner_split(domain: str, split: str) -> pd.DataFrame:
    from fastadapt.readers.conll import read_conll

    name = f"{split}.conll"
    files = {name: (RAW / f"crossner_{domain}" / name).read_bytes()}
    rows = read_conll(files, {"splits": {split: name}, "scheme": "iob2"}, f"crossner_{domain}").rows
    return rows.assign(row_id=np.arange(len(rows)))


def source_sentences(conll_train: pd.DataFrame, fold: str,
                     repeat: int = 1) -> tuple[list[list[str]], list[list[str]], str]:
    """The source tagger's training sentences and their description: CoNLL-2003 train, and for
    `lodo_<D>` also the train splits of the other CrossNER domains (each sentence `repeat` times:
    they are 500 against CoNLL's 14,041), with CoNLL's types renamed as CrossNER names them
    (`fastadapt.adaptation.transfer.source_sentences`, as the released `ner_source_tagger`)."""
    from fastadapt.adaptation.transfer import source_sentences as joined_sentences

    if not fold.startswith(LODO_PREFIX):
        return conll_train["tokens"].tolist(), conll_train["tags"].tolist(), "conll2003 train"
    left_out = fold[len(LODO_PREFIX):]
    if left_out not in CROSSNER:
        sys.exit(f"--folds {fold}: expected {LODO_PREFIX}<domain> with a domain of {CROSSNER}")
    others = [f"crossner_{domain}" for domain in CROSSNER if domain != left_out]
    tables = {"conll2003": conll_train, **{name: read_crossner_split(name.removeprefix("crossner_"), "train")
                                           for name in others}}
    tables = {name: table.assign(split="train") for name, table in tables.items()}  # read rows carry no split
    return joined_sentences(tables, CONLL_TO_CROSSNER, {name: repeat for name in others})


def pretrain(args: argparse.Namespace) -> None:
    """One source tagger per held-out fold (and `all`), saved as model directories."""
    from fastadapt.adaptation import AdaptationConfig
    from fastadapt.adaptation.transfer import pretrain_tagger
    from fastadapt.models.backbones import load_backbone

    train = read_conll_split("train")
    train = train[train["tokens"].map(len) > 0]
    variant = CONTRASTIVE_VARIANT if args.token_contrastive and args.variant == "plain" else args.variant
    suffix = variant_suffix(variant)
    for fold in args.folds:
        tokens, tags, source = source_sentences(train, fold, args.crossner_repeat)
        target = MODELS / f"source_{fold}{suffix}"
        if (target / "tagger.json").is_file() and not args.force:
            print(f"{target} exists; skipping (--force to retrain)", flush=True)
            continue
        # `all_cased`: all types, the head reading each word's casing (the casing measurement).
        config = AdaptationConfig.from_params({
            "strategy": "full", "max_length": 128, "batch_size": 64, "device": args.device, "dropout": 0.1,
            "casing": fold == "all_cased",
            **({"token_contrastive": {"weight": args.token_contrastive}} if args.token_contrastive else {}),
            "training": {"max_steps": args.steps, "batch_size": 16, "lr": args.lr, "warmup_ratio": 0.1,
                         "device": args.device, "num_threads": args.threads, "log_every": 50, "seed": 0}})
        held_out = [fold] if fold in CONLL_TYPES else []
        started = time.perf_counter()
        tagger = pretrain_tagger(load_backbone("minilm-l6"), tokens, tags, config,
                                 held_out=held_out, source=source, progress=args.progress)
        partial = target.with_name(target.name + ".partial")
        tagger.save_directory(partial)
        if target.exists():
            shutil.rmtree(target)
        partial.replace(target)  # a killed run never leaves a half-written model directory
        print(f"{target.name}: {time.perf_counter() - started:.0f} s, {tagger.training}", flush=True)


# ---- evaluation ----------------------------------------------------------------------------------

HEAD_TRAINING = {"max_steps": 200, "batch_size": 32, "lr": 0.05, "weight_decay": 0.0, "warmup_ratio": 0.0}
FULL_TRAINING = {"max_steps": 60, "batch_size": 16, "lr": 3.0e-4, "warmup_ratio": 0.1}


def weights_fingerprint(model: torch.nn.Module) -> str:
    """The first 12 hex digits of a sha256 over the model's weights, so that features cached for
    one encoder are never read back for another saved under the same name (a retrained tagger)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


class Encoded:
    """Word features of one corpus split under one encoder, computed once (cached on disk under
    the name and the encoder's weights fingerprint)."""

    def __init__(self, name: str, backbone, tokens: list[list[str]], threads: int) -> None:
        from fastadapt.adaptation.ner import word_features

        path = OUTPUT / "features" / f"{name}.{weights_fingerprint(backbone.model)}.npz"
        lengths = np.array([len(t) for t in tokens])
        if path.is_file():
            data = np.load(path)
            flat, mask = data["flat"], data["mask"]
        else:
            started = time.perf_counter()
            states, present = word_features(backbone, tokens, 128, 64, "cpu")
            flat = np.concatenate(states).astype(np.float16)
            mask = np.concatenate(present)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial.npz")
            np.savez(partial, flat=flat, mask=mask)
            partial.replace(path)
            print(f"encoded {name}: {len(tokens)} sentences in {time.perf_counter() - started:.0f} s", flush=True)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.states = [flat[a:b].astype(np.float32) for a, b in zip(offsets[:-1], offsets[1:])]
        self.present = [mask[a:b] for a, b in zip(offsets[:-1], offsets[1:])]

    def rows(self, positions) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return [self.states[i] for i in positions], [self.present[i] for i in positions]


def score(test: pd.DataFrame, predicted: list[list[str]]) -> dict:
    from fastadapt.evaluation.metrics import ner_metrics
    from fastadapt.models.baselines import repair_iob2

    metrics = ner_metrics(pd.DataFrame({"row_id": test["row_id"], "tags": test["tags"], "predicted": predicted}))
    metrics["valid_iob2"] = float(np.mean([repair_iob2(list(p)) == list(p) for p in predicted]))
    return metrics


def source_tagger(fold: str):
    """A saved source tagger with its source transitions (estimated again if it was saved without)."""
    from fastadapt.adaptation.ner import EncoderTagger
    from fastadapt.adaptation.nnshot import AbstractTransitions
    from fastadapt.adaptation.transfer import hold_out_types

    directory = MODELS / f"source_{fold}"
    if not (directory / "tagger.json").is_file():
        sys.exit(f"{directory} is missing: run `python benchmarks/ner_few_shot.py pretrain --folds {fold}` first")
    tagger = EncoderTagger.load_directory(directory)
    if tagger.transitions is None:
        train = read_conll_split("train")
        tagger.transitions = AbstractTransitions.from_tag_sequences(
            hold_out_types(train["tags"].tolist(), tagger.training.get("held_out", [])))
    return tagger


# NNShot / StructShot settings tried; the report keeps the one with the best mean held-out F1 on
# CoNLL validation (testa) over the four folds (`selection_<fold>.parquet`), never on testb or CrossNER.
# Only temperature / weight matters to StructShot's path (scaling both scales every path alike); on a
# first pass (5-20 x 0.5-1) the best ratio was the largest, so the grid reaches further.
GRID = [("nnshot", 10.0, 1.0)] + [("structshot", t, w) for t, w in
                                  ((10.0, 0.5), (20.0, 0.5), (20.0, 0.25), (50.0, 0.5), (50.0, 0.25), (50.0, 0.1))]


def adapt_and_score(learner, strategy: str, support: pd.DataFrame, test: pd.DataFrame, test_features, support_features,
                    threads: int, **options) -> dict:
    """Adapt one learner on one support draw and score it on the whole test split (re-encoded
    when `test_features` is None: the learner changed the encoder)."""
    from fastadapt.adapt import adapt

    options = {"device": "cpu", **options}
    if strategy == "finetune_head":
        options["training"] = {**HEAD_TRAINING, "num_threads": threads, "device": "cpu"}
    if strategy == "finetune_all":
        options["training"] = {**FULL_TRAINING, "num_threads": threads, "device": "cpu"}
    if support_features is not None:
        options["features"] = support_features
    predictor = adapt(learner, support[["tokens", "tags"]], strategy, **options)
    if test_features is not None:
        predicted = predictor.model.predict_features(test_features.states, test_features.present)
    else:
        predicted = predictor.predict(test["tokens"].tolist())
    return {"adaptation_seconds": predictor.adaptation_seconds, **score(test, predicted)}


def learner_rows(learner, support, test, test_features, support_features, threads: int, source_name: str,
                 full: bool) -> list[dict]:
    """Every learner of the script's docstring built on one encoder, on one draw."""
    from fastadapt.adaptation.ner import word_features

    rows = []
    is_source = source_name != "minilm"
    if support_features is None:  # the support once per draw, for every frozen-encoder learner
        backbone = learner.backbone if is_source else learner
        support_features = word_features(backbone, support["tokens"].tolist(), 128, 64, "cpu")
    for strategy, temperature, weight in GRID:
        name = strategy if source_name == "source" else f"{strategy}_{source_name}"
        metrics = adapt_and_score(learner, strategy, support, test, test_features, support_features, threads,
                                  temperature=temperature, transition_weight=weight)
        rows.append({"learner": name, "temperature": temperature, "transition_weight": weight, **metrics})
    strategies = ["finetune_head"] + (["prototype"] if not is_source else []) + (["finetune_all"] if full else [])
    for strategy in strategies:
        name = {"finetune_head": "head", "prototype": "prototype", "finetune_all": "full"}[strategy] + f"_{source_name}"
        metrics = adapt_and_score(learner, strategy, support, test, None if strategy == "finetune_all" else test_features,
                                  None if strategy == "finetune_all" else support_features, threads)
        rows.append({"learner": name, "temperature": np.nan, "transition_weight": np.nan, **metrics})
    return rows


class Results:
    """Result rows in a parquet file, written atomically after each draw; done keys are skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frame = pd.read_parquet(path) if path.is_file() else pd.DataFrame()

    def done(self, **key) -> bool:
        if self.frame.empty:
            return False
        mask = np.ones(len(self.frame), dtype=bool)
        for column, value in key.items():
            mask &= (self.frame[column] == value).to_numpy()
        return bool(mask.any())

    def add(self, rows: list[dict]) -> None:
        self.frame = pd.concat([self.frame, pd.DataFrame(rows)], ignore_index=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial.parquet")
        self.frame.to_parquet(partial)
        partial.replace(self.path)


def support_rows(train: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """The greedy k-shot draw (PROTOCOL.md section 4). A type with fewer than k mentions in the
    whole train split (CrossNER music's `musicalinstrument`: 2) cannot reach k: the draw runs
    over the other types and then adds every train sentence of the short types, in row order."""
    from collections import Counter

    from fastadapt.tasks.kshot import draw_ner_kshot, entity_mentions

    mentions = [entity_mentions(tags) for tags in train["tags"]]
    totals = sum(mentions, Counter())
    short = {t for t, n in totals.items() if n < k}
    ids = draw_ner_kshot(train, k, seed, entity_types=sorted(set(totals) - short))
    ids += [int(r) for r, m in zip(train["row_id"], mentions) if short & set(m) and int(r) not in ids]
    return train.set_index("row_id", drop=False).loc[ids].reset_index(drop=True)


def select(fold: str, tagger, train: pd.DataFrame, dev_rows: int, threads: int, suffix: str = "") -> None:
    """The GRID on CoNLL validation (the first `dev_rows` testa sentences) for one fold, k=5,
    seeds 0-1: held-out F1 per setting, to `selection_<fold><suffix>.parquet`."""
    from fastadapt.adapt import adapt

    path = OUTPUT / f"selection_{fold}{suffix}.parquet"
    if path.is_file():
        return
    dev = read_conll_split("validation").iloc[:dev_rows]
    dev_encoded = Encoded(f"source_{fold}{suffix}_testa{dev_rows}", tagger.backbone, dev["tokens"].tolist(), threads)
    rows = []
    for seed in (0, 1):
        support = support_rows(train, 5, seed)
        for strategy, temperature, weight in GRID:
            predictor = adapt(tagger, support[["tokens", "tags"]], strategy, device="cpu", temperature=temperature,
                              transition_weight=weight)
            predicted = predictor.model.predict_features(dev_encoded.states, dev_encoded.present)
            rows.append({"fold": fold, "seed": seed, "strategy": strategy, "temperature": temperature,
                         "transition_weight": weight, "f1_heldout": score(dev, predicted).get(f"f1__{fold}", 0.0)})
    frame = pd.DataFrame(rows)
    frame.to_parquet(path.with_suffix(".partial.parquet"))
    path.with_suffix(".partial.parquet").replace(path)


def evaluate(args: argparse.Namespace) -> None:
    """`--folds`: PER / LOC / ORG / MISC (a source tagger each) and `minilm` (the plain-MiniLM
    learners, scored for every fold's held-out type); `--domains`: CrossNER with `source_all`
    and MiniLM. Each invocation writes its own results file, so folds can run side by side."""
    from fastadapt.models.backbones import load_backbone

    results = Results(OUTPUT / f"results_{args.tag}.parquet")
    suffix = variant_suffix(args.variant)
    named = suffix[1:] if suffix else "source"  # the learners' names: structshot_<variant>, head_<variant>
    train, test = read_conll_split("train"), read_conll_split("test")
    draws = {(k, seed): support_rows(train, k, seed) for k in args.ks for seed in args.seeds}
    minilm = None
    for fold in args.folds:
        if fold == "minilm":
            minilm = minilm or load_backbone("minilm-l6")
            learner, test_features = minilm, Encoded("minilm_testb", minilm, test["tokens"].tolist(), args.threads)
        else:
            learner = source_tagger(fold + suffix)
            select(fold, learner, train, args.dev_rows, args.threads, suffix)
            test_features = Encoded(f"source_{fold}{suffix}_testb", learner.backbone, test["tokens"].tolist(),
                                    args.threads)
        encoder = fold if fold == "minilm" else fold + suffix
        for (k, seed), support in draws.items():
            if results.done(experiment="tagset", encoder=encoder, k=k, seed=seed):
                continue
            full = fold != "minilm" and seed in args.full_seeds and k in args.full_ks
            rows = learner_rows(learner, support, test, test_features, None, args.threads,
                                "minilm" if fold == "minilm" else named, full)
            folds = CONLL_TYPES if fold == "minilm" else [fold]
            results.add([{"experiment": "tagset", "encoder": encoder, "corpus": held, "k": k, "seed": seed,
                          "n_support": len(support), "f1_heldout": row.get(f"f1__{held}", 0.0), **row}
                         for row in rows for held in folds])
            print(f"tagset {encoder} k={k} seed={seed}: " + ", ".join(
                f"{r['learner']} {r.get('f1__' + folds[0], 0):.3f}" for r in rows), flush=True)
    for domain in args.domains:
        domain_train, domain_test = read_crossner_split(domain, "train"), read_crossner_split(domain, "test")
        minilm = minilm or load_backbone("minilm-l6")
        if args.domain_source == "lodo":  # only the learners on the leave-this-domain-out source
            tagger = source_tagger(LODO_PREFIX + domain + suffix)
            learners = (("lodo" + suffix, tagger, tagger.backbone),)
        else:
            tagger = source_tagger("all" + suffix)
            learners = ((named, tagger, tagger.backbone),) + (() if suffix else (("minilm", minilm, minilm),))
        for name, learner, backbone in learners:
            encoder = {named: f"source_all{suffix}", "minilm": "minilm", "lodo" + suffix: f"source_lodo_{domain}{suffix}"}[name]
            test_features = Encoded(f"{encoder}_crossner_{domain}_test", backbone, domain_test["tokens"].tolist(),
                                    args.threads)
            for seed in args.seeds:
                if results.done(experiment="domain", encoder=encoder, corpus=domain, seed=seed):
                    continue
                support = support_rows(domain_train, 5, seed)
                rows = learner_rows(learner, support, domain_test, test_features, None, args.threads, name,
                                    name != "minilm" and seed in args.full_seeds)
                results.add([{"experiment": "domain", "encoder": encoder, "corpus": domain, "k": 5, "seed": seed,
                              "n_support": len(support), "f1_heldout": np.nan, **row} for row in rows])
                print(f"domain {domain} {encoder} seed={seed}: " + ", ".join(
                    f"{r['learner']} {r['entity_f1']:.3f}" for r in rows), flush=True)


def chosen_settings(suffix: str = "") -> dict:
    """Per strategy, the GRID setting with the best mean held-out F1 on testa over the folds, for
    the source taggers of `suffix` (plain, or `_ctr`: trained with the contrastive objective)."""
    names = {f"selection_{fold}{suffix}" for fold in CONLL_TYPES}
    frames = [pd.read_parquet(p) for p in sorted(OUTPUT.glob("selection_*.parquet")) if p.stem in names]
    if not frames:
        return {}
    table = pd.concat(frames)
    means = table.groupby(["strategy", "temperature", "transition_weight"])["f1_heldout"].mean().reset_index()
    chosen = {}
    for strategy, part in means.groupby("strategy"):
        best = part.sort_values("f1_heldout").iloc[-1]
        chosen[strategy] = {"temperature": float(best["temperature"]), "transition_weight": float(best["transition_weight"]),
                            "testa_f1": float(best["f1_heldout"]), "folds": sorted(table["fold"].unique())}
    return chosen


# ---- casing ----------------------------------------------------------------------------------------


def casing(args: argparse.Namespace) -> None:
    """What casing buys on CoNLL-2003 testb: a linear token head on frozen MiniLM states (the
    conf/base NER head: 4000 steps, batch 256, lr 0.05) trained on the first `--casing-rows`
    train sentences, with and without the casing one-hot; and, when `source_all_cased` was
    pre-trained, the fine-tuned taggers with and without it at the same step budget."""
    from fastadapt.adaptation import AdaptationConfig, fit_tagger
    from fastadapt.adaptation.ner import casing_features
    from fastadapt.models.backbones import load_backbone

    train, test = read_conll_split("train"), read_conll_split("test")
    train = train[train["tokens"].map(len) > 0].iloc[:args.casing_rows]
    minilm = load_backbone("minilm-l6")
    train_encoded = Encoded(f"minilm_train{args.casing_rows}", minilm, train["tokens"].tolist(), args.threads)
    test_encoded = Encoded("minilm_testb", minilm, test["tokens"].tolist(), args.threads)
    rows = []
    for cased in (False, True):
        config = AdaptationConfig.from_params({
            "strategy": "head", "device": "cpu", "casing": cased, "dropout": 0.1,
            "training": {"max_steps": 4000, "batch_size": 256, "lr": 0.05, "weight_decay": 0.0,
                         "warmup_ratio": 0.02, "num_threads": args.threads, "device": "cpu"}})
        started = time.perf_counter()
        tagger = fit_tagger(minilm, train["tokens"].tolist(), train["tags"].tolist(), config,
                            features=(train_encoded.states, train_encoded.present))
        seconds = time.perf_counter() - started
        predicted = tagger.predict_features(test_encoded.states, test_encoded.present,
                                            casing_features(test["tokens"].tolist()) if cased else None)
        metrics = score(test, predicted)
        rows.append({"model": "frozen MiniLM + linear head", "train_sentences": len(train), "casing": cased,
                     "seconds": seconds, **metrics})
        print(f"head casing={cased}: testb entity F1 {metrics['entity_f1']:.4f}", flush=True)
    for fold in ("all", "all_cased"):
        directory = MODELS / f"source_{fold}"
        if not (directory / "tagger.json").is_file():
            continue
        tagger = source_tagger(fold)
        encoded = Encoded(f"source_{fold}_testb", tagger.backbone, test["tokens"].tolist(), args.threads)
        predicted = tagger.predict_features(encoded.states, encoded.present,
                                            casing_features(test["tokens"].tolist()) if tagger.casing else None)
        metrics = score(test, predicted)
        rows.append({"model": f"MiniLM fine-tuned ({tagger.training.get('steps')} steps, batch 16)",
                     "train_sentences": int(tagger.training.get("source_sentences", 0)), "casing": tagger.casing,
                     "seconds": float(tagger.training.get("seconds", 0.0)), **metrics})
        print(f"source_{fold}: testb entity F1 {metrics['entity_f1']:.4f}", flush=True)
    frame = pd.DataFrame(rows)
    frame.to_parquet(OUTPUT / "casing.parquet")


# ---- report ----------------------------------------------------------------------------------------

LEARNER_LABELS = {
    "structshot": "StructShot, source encoder",
    "nnshot": "NNShot, source encoder",
    "head_source": "frozen source encoder + head",
    "full_source": "full fine-tuning from the source encoder",
    "structshot_minilm": "StructShot, plain MiniLM",
    "nnshot_minilm": "NNShot, plain MiniLM",
    "prototype_minilm": "prototype, plain MiniLM (old default)",
    "head_minilm": "frozen MiniLM + head (old finetune_head)",
    "structshot_lodo": "StructShot, CoNLL + other CrossNER domains",
    "nnshot_lodo": "NNShot, CoNLL + other CrossNER domains",
    "head_lodo": "frozen CoNLL + other-CrossNER encoder + head",
    "full_lodo": "full fine-tuning from the CoNLL + other-CrossNER encoder",
    "structshot_ctr": "StructShot, source encoder + CONTaiNER objective",
    "nnshot_ctr": "NNShot, source encoder + CONTaiNER objective",
    "head_ctr": "frozen source encoder + CONTaiNER objective + head",
    "full_ctr": "full fine-tuning from the source encoder + CONTaiNER objective",
    "structshot_lodo_ctr": "StructShot, CoNLL + other CrossNER domains + CONTaiNER objective",
    "nnshot_lodo_ctr": "NNShot, CoNLL + other CrossNER domains + CONTaiNER objective",
    "head_lodo_ctr": "frozen CoNLL + other-CrossNER encoder + CONTaiNER objective + head",
    "full_lodo_ctr": "full fine-tuning from the CoNLL + other-CrossNER encoder + CONTaiNER objective",
}


def _ci(values) -> str:
    from fastadapt.evaluation.metrics import mean_confidence_interval

    values = [v for v in values if pd.notna(v)]
    if not values:
        return "–"
    mean, half = mean_confidence_interval(values)
    return f"{mean:.3f} ± {half:.3f} (n={len(values)})"


def report(args: argparse.Namespace) -> None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    paths = [p for p in sorted(OUTPUT.glob("results_*.parquet")) if "partial" not in p.name]
    if not paths:
        sys.exit(f"no {OUTPUT}/results_*.parquet: run `python benchmarks/ner_few_shot.py evaluate` first")
    results = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    settings = chosen_settings()
    keep = np.ones(len(results), dtype=bool)
    # NNShot / StructShot rows of the setting chosen on testa, for each kind of source tagger.
    contrastive = variant_suffix(CONTRASTIVE_VARIANT)
    for names, chosen_for in ((("", "_minilm", "_lodo"), settings),
                              ((contrastive, "_lodo" + contrastive), chosen_settings(contrastive))):
        for strategy, chosen in chosen_for.items():
            rows = results["learner"].isin([strategy + name for name in names]).to_numpy()
            match = ((results["temperature"] == chosen["temperature"])
                     & (results["transition_weight"] == chosen["transition_weight"]))
            keep &= ~rows | match.to_numpy()
    results = results[keep]
    order = [name for name in LEARNER_LABELS if name in set(results["learner"])]
    lines = ["# Few-shot NER", "",
             f"Produced by `python benchmarks/ner_few_shot.py report` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f" ({platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}). Learners, draws and "
             "budgets: the script's docstring. Entity F1 is seqeval's strict IOB2; 95 % CIs are "
             "1.96 sd / sqrt(n) over the runs counted in n.", ""]
    if settings:
        lines += ["Settings chosen on CoNLL testa (first 600 sentences, held-out F1, k=5, seeds 0-1, mean over "
                  "folds " + ", ".join(next(iter(settings.values()))["folds"]) + "; never on testb or CrossNER): "
                  + "; ".join(f"{k}: temperature {v['temperature']:g}, transition weight {v['transition_weight']:g} "
                              f"(testa F1 {v['testa_f1']:.3f})" for k, v in settings.items())
                  + "".join(f"; on the `_ctr` taggers, {k}: temperature {v['temperature']:g}, transition weight "
                            f"{v['transition_weight']:g} (testa F1 {v['testa_f1']:.3f})"
                            for k, v in chosen_settings(contrastive).items()), ""]
    budgets = []
    for info_path in sorted(MODELS.glob("source_*/tagger.json")):
        training = json.loads(info_path.read_text()).get("training", {})
        lr = f"lr {training['lr']:g}" if "lr" in training else "lr not recorded"
        budgets.append(f"`{info_path.parent.name}` {training.get('steps')} steps of batch "
                       f"{training.get('batch_size', 16)}, {lr} ({training.get('seconds', 0):.0f} s, "
                       f"held out {training.get('held_out')})")
    if budgets:
        lines += ["Source taggers (MiniLM fully fine-tuned on CoNLL-2003 train; `source_lodo_<D>` also on the "
                  "other CrossNER domains' train splits; `_ctr` with CONTaiNER's contrastive token objective): " + "; ".join(budgets)
                  + ". Cells with n below 5 seeds (or 4 folds x 5 seeds) are runs this CPU budget did not reach; "
                  "`evaluate` resumes where it stopped.", ""]
    tagset = results[results["experiment"] == "tagset"]
    if not tagset.empty:
        lines += ["## Tag-set extension (PROTOCOL.md section 4)", "",
                  "Fold T: the source tagger is fine-tuned on CoNLL-2003 train with T relabelled O; the support "
                  "set (greedy, k mentions of each of the four types, T labelled) is drawn from train; figures "
                  "are the F1 of T on the whole testb. Target: mean held-out F1 at 5 shots >= 0.50.", ""]
        for k in sorted(tagset["k"].unique()):
            part = tagset[tagset["k"] == k]
            folds = sorted(part["corpus"].unique())
            lines += [f"### k = {k}", "", "| learner | " + " | ".join(folds) + " | mean held-out F1 | micro F1, all types |",
                      "|---|" + "---|" * (len(folds) + 2)]
            for learner in order:
                rows = part[part["learner"] == learner]
                if rows.empty:
                    continue
                cells = [_ci(rows[rows["corpus"] == fold]["f1_heldout"]) for fold in folds]
                lines.append(f"| {LEARNER_LABELS[learner]} | " + " | ".join(cells)
                             + f" | **{_ci(rows['f1_heldout'])}** | {_ci(rows['entity_f1'])} |")
            lines.append("")
    domain = results[results["experiment"] == "domain"]
    if not domain.empty:
        domains = [d for d in CROSSNER if d in set(domain["corpus"])]
        lines += ["## Domain transfer to CrossNER (5-shot, greedy)", "",
                  "The source tagger is fine-tuned on CoNLL-2003 train only: it never saw any CrossNER domain; "
                  "the `CoNLL + other CrossNER domains` learners use `source_lodo_<D>`, fine-tuned on CoNLL-2003 "
                  "train and the train splits of the four other domains, so they never saw domain D either. "
                  "Support: greedy 5 mentions of every type of the domain's train split; entity F1 (micro, all "
                  "the domain's types) on its whole test split. Target: mean entity F1 >= 0.30.", "",
                  "| learner | " + " | ".join(domains) + " | mean |", "|---|" + "---|" * (len(domains) + 1)]
        for learner in order:
            rows = domain[domain["learner"] == learner]
            if rows.empty:
                continue
            cells = [_ci(rows[rows["corpus"] == d]["entity_f1"]) for d in domains]
            lines.append(f"| {LEARNER_LABELS[learner]} | " + " | ".join(cells) + f" | **{_ci(rows['entity_f1'])}** |")
        lines += ["", "Adaptation seconds (mean over all runs, the fit alone): " + ", ".join(
            f"{learner} {results[results['learner'] == learner]['adaptation_seconds'].mean():.2f}" for learner in order)
            + ". Decoded IOB2 validity: " + f"{results['valid_iob2'].min():.3f} (the lowest share of valid sentences "
            "in any run).", ""]
    casing_path = OUTPUT / "casing.parquet"
    if casing_path.is_file():
        table = pd.read_parquet(casing_path)
        lines += ["## Casing features on CoNLL-2003 testb", "",
                  "| model | train sentences | casing | testb entity F1 | fit seconds |", "|---|---|---|---|---|"]
        for row in table.itertuples():
            lines.append(f"| {row.model} | {row.train_sentences} | {'yes' if row.casing else 'no'} | "
                         f"{row.entity_f1:.4f} | {row.seconds:.0f} |")
        lines.append("")
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    panels = [(tagset, "f1_heldout", "Tag-set extension: held-out type F1 (testb)", "k"),
              (domain, "entity_f1", "CrossNER 5-shot: entity F1", "corpus")]
    for axis, (frame, metric, title, group) in zip(figure.subplots(1, 2), panels):
        if frame.empty:
            continue
        groups = sorted(frame[group].unique(), key=lambda g: CROSSNER.index(g) if g in CROSSNER else g)
        width = 0.8 / max(len(order), 1)
        for i, learner in enumerate(order):
            means, errors = [], []
            for g in groups:
                values = frame[(frame["learner"] == learner) & (frame[group] == g)][metric].dropna()
                means.append(values.mean() if len(values) else np.nan)
                errors.append(1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0)
            axis.bar(np.arange(len(groups)) + i * width, means, width, yerr=errors, label=learner, capsize=2,
                     color=colormaps["tab20"](i % 20))  # more learners than the default cycle's 10 colours
        axis.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{group}={g}" if group == "k" else g for g in groups])
        axis.set_title(title)
        axis.set_ylim(0, 1)
        axis.axhline(0.5 if metric == "f1_heldout" else 0.3, color="grey", linestyle="--", linewidth=1)
    figure.axes[0].legend(fontsize=7, loc="upper left")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    plot = REPORT.with_suffix(".png")
    figure.savefig(plot.with_suffix(".partial.png"), dpi=110)
    plot.with_suffix(".partial.png").replace(plot)
    lines += [f"![few-shot NER]({plot.name})", ""]
    partial = REPORT.with_suffix(".partial.md")
    partial.write_text("\n".join(lines))
    partial.replace(REPORT)
    print(f"wrote {REPORT} and {plot}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["pretrain", "evaluate", "casing", "report", "all"])
    parser.add_argument("--folds", nargs="*", default=None,
                        help="pretrain: all, all_cased, PER..., lodo_<crossner domain>; evaluate: PER..., minilm")
    parser.add_argument("--steps", type=int, default=300, help="source-tagger fine-tuning steps (batch 16)")
    parser.add_argument("--lr", type=float, default=1.0e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--full-seeds", nargs="*", type=int, default=[0],
                        help="seeds on which full fine-tuning also runs (it re-encodes the test split each time)")
    parser.add_argument("--full-ks", nargs="*", type=int, default=[5])
    parser.add_argument("--dev-rows", type=int, default=600, help="testa sentences for the settings' selection")
    parser.add_argument("--tag", default="main", help="name of this invocation's results file")
    parser.add_argument("--casing-rows", type=int, default=3000, help="train sentences of the casing measurement")
    parser.add_argument("--domains", nargs="*", default=CROSSNER)
    parser.add_argument("--crossner-repeat", type=int, default=4,
                        help="pretrain lodo_<D>: times each CrossNER train sentence joins CoNLL's")
    parser.add_argument("--token-contrastive", type=float, default=None, metavar="WEIGHT",
                        help="pretrain: add CONTaiNER's contrastive token objective with this weight "
                             "(saved as source_<fold>_ctr, or _<variant> with --variant)")
    parser.add_argument("--variant", default="plain",
                        help="evaluate: the source taggers trained without (plain) or with the objective (ctr, or "
                             "the --variant they were pre-trained under)")
    parser.add_argument("--domain-source", choices=["all", "lodo"], default="all",
                        help="evaluate: the CrossNER learners on source_all and MiniLM, or on source_lodo_<domain>")
    args = parser.parse_args()
    if args.folds is None:
        args.folds = ["all", *CONLL_TYPES] if args.stage == "pretrain" else [*CONLL_TYPES, "minilm"]
    torch.set_num_threads(args.threads)
    if args.stage in ("pretrain", "all"):
        pretrain(args)
    if args.stage in ("evaluate", "all"):
        evaluate(args)
    if args.stage in ("casing", "all"):
        casing(args)
    if args.stage in ("report", "all"):
        report(args)


if __name__ == "__main__":
    main()
