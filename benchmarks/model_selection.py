"""Which epoch a run should keep: rules for choosing the model from the run's own held-back identities,
judged by what each chosen model scores on the set's held-out pairs (identities neither training nor the
run's validation ever saw).

Each run is `facecli train` with no flags (or with one of train_recipes.py's recipes, --recipe) on a set of
train_recipes.py. At every validation the script also embeds the held-back images and the held-out test images
with the model as it is then, so every rule is judged on the same runs: the model the run kept by its own
rule (state.Best), rules computed from its validation reports and from the same embeddings, the last
validation's model, and the oracle (the best test score any validation reached).
Usage: python benchmarks/model_selection.py [--sets grey96x10 pose64] [--seeds 0 1 2] [--recipe auto]
       [--log runs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from train_recipes import RECIPES, make_set

from facecli.data.pairs import read_pairs, resolve_images
from facecli.embed import EmbedOptions, TorchEmbedder, embed_images
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.training import validation as validation_module
from facecli.training.state import SMOOTHING, Best, EarlyStopping
from facecli.verification import PairsInput, evaluate
from facecli.verification.metrics import area_under_curve, counts, threshold_grid, verification_report


def recorded_run(name: str, work: Path, seed: int, options: dict) -> tuple[list[dict], float]:
    """Train with `options` on the set in `work`; per validation, the run's own report and the embeddings of
    the held-back and the held-out test images; and the test accuracy of the model the run kept."""
    test = read_pairs(work / "pairs.txt")
    test_files = resolve_images(test, work / "faces")
    test_images = list(dict.fromkeys(test.images))
    records: list[dict] = []
    original = validation_module.Validation.__call__

    def recording(self, model):
        report = original(self, model)
        modes = [(module, module.training) for module in model.modules()]
        try:
            embedder = TorchEmbedder(model, self.runtime)
            held = [self.checked.resolved[i] for i in self.checked.present]
            records.append({
                "report": report, "held": held,
                "held_embedded": embed_images(embedder, held, 64, 0),
                "test_embedded": embed_images(embedder, [test_files[i] for i in test_images], 64, 0),
            })  # fmt: skip
        finally:
            for module, training in modes:
                module.train(training)
        return report

    validation_module.Validation.__call__ = recording
    try:
        run_dir = work / f"run_{name}_{seed}"
        train(TrainOptions(data=work / "cls_train.txt", run_dir=run_dir, device="cpu", seed=seed, **options))
    finally:
        validation_module.Validation.__call__ = original
    row = {image: n for n, image in enumerate(test_images)}
    a, b = [row[i] for i in test.left], [row[i] for i in test.right]
    for record in records:
        record["all_auc"], record["all_accuracy"] = all_pairs_scores(record)
        e = _unit(record.pop("test_embedded"))
        record["test"] = verification_report((e[a] * e[b]).sum(1), test.labels, "cosine", test.folds).accuracy_mean
    embedding = EmbedOptions(resolve_runtime("cpu"), backend="torch")
    kept = evaluate(checkpoint=run_dir / "best.safetensors", pairs=PairsInput(work / "pairs.txt", root=work / "faces"),
                    embedding=embedding)  # fmt: skip
    return records, kept.accuracy_mean


def _unit(embedded) -> np.ndarray:
    e = np.asarray(embedded, np.float64)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def all_pairs_scores(record: dict) -> tuple[float, float]:
    """AUC and balanced best accuracy over every pair of the held-back images (not only the run's pairs)."""
    e = _unit(record["held_embedded"])
    who = np.array([path.parent.name for path in record["held"]])
    i, j = np.triu_indices(len(who), 1)
    scores, same = (e[i] * e[j]).sum(1), who[i] == who[j]
    at = counts(scores, same, threshold_grid(scores, "cosine"))
    return area_under_curve(scores, same), float(((at.tar + 1 - at.far) / 2).max())


def chosen(series: np.ndarray, smooth: int = 1) -> int:
    """The validation a rule keeps: the first maximum of `series`, averaged over `smooth` validations ending
    at each one (the first ones over those there are)."""
    means = [series[max(0, k - smooth + 1) : k + 1].mean() for k in range(len(series))]
    return int(np.argmax(means))


PATIENCES = (3, 5, 8)  # early stopping replayed on each run's validations


def stopped_early(run_auc: np.ndarray, patience: int) -> tuple[int, int]:
    """The run replayed with early stopping, by state.Best and EarlyStopping as the loop calls them: the
    validation it stops at and the one whose model it keeps (0-based). Stopping only cuts the run's end, so
    the replay is exact for the validations the run made."""
    best, stop, kept = Best(), EarlyStopping(patience), 0
    for k, auc in enumerate(run_auc):
        if best.update(k + 1, 0.0, accuracy=0.0, auc=float(auc)):
            kept = k
        if stop(best):
            return k, kept
    return len(run_auc) - 1, kept


def rules(records: list[dict], kept: float) -> dict[str, float]:
    """Held-out test accuracy of the model each rule keeps, and of the one the run kept by its own rule."""
    test = np.array([r["test"] for r in records])
    run_acc = np.array([r["report"].accuracy_mean for r in records])
    run_auc = np.array([r["report"].auc for r in records])
    all_auc = np.array([r["all_auc"] for r in records])
    all_acc = np.array([r["all_accuracy"] for r in records])
    replayed = {patience: stopped_early(run_auc, patience) for patience in PATIENCES}
    return {
        "kept by the run (best.safetensors)": kept,
        "run's accuracy": test[chosen(run_acc)],
        f"run's accuracy, mean of {SMOOTHING}": test[chosen(run_acc, SMOOTHING)],
        "run's AUC": test[chosen(run_auc)],
        f"run's AUC, mean of {SMOOTHING}": test[chosen(run_auc, SMOOTHING)],
        "all pairs, AUC": test[chosen(all_auc)],
        "all pairs, balanced accuracy": test[chosen(all_acc)],
        f"all pairs, AUC, mean of {SMOOTHING}": test[chosen(all_auc, SMOOTHING)],
        "last validation": test[-1],
        "oracle (best test)": test.max(),
        **{f"early stop, patience {p}": test[k] for p, (_, k) in replayed.items()},
        **{f"early stop, patience {p}: share of the run": (stop + 1) / len(test) for p, (stop, _) in replayed.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["grey96x10", "pose64"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--time-budget", type=float, help="Seconds per run (default: the recipe's).")
    parser.add_argument("--recipe", default="auto", choices=RECIPES, help="train_recipes.py's options to train with.")
    parser.add_argument("--log", type=Path, help="Append each run's per-validation figures here (JSON lines).")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    for name in args.sets:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            make_set(name, work)
            options = {**RECIPES[args.recipe], **({"time_budget": args.time_budget} if args.time_budget else {})}
            for seed in args.seeds:
                records, kept = recorded_run(name, work, seed, options)
                picked = rules(records, kept)
                results.setdefault(name, []).append(picked)
                series = [[r["report"].accuracy_mean, r["report"].auc, r["all_auc"], r["test"]] for r in records]
                line = {
                    "set": name,
                    "recipe": args.recipe,
                    "seed": seed,
                    "validations": len(records),
                    **picked,
                    "series": series,
                }
                print(json.dumps({k: v for k, v in line.items() if k != "series"}), flush=True)
                if args.log:
                    with args.log.open("a") as log:
                        log.write(json.dumps(line) + "\n")
    table = Table(title="Held-out accuracy of the model each rule keeps (mean over seeds)")
    table.add_column("rule")
    for name in results:
        table.add_column(name, justify="right")
    for rule in next(iter(results.values()))[0]:
        table.add_row(rule, *(f"{np.mean([r[rule] for r in runs]):.3f}" for runs in results.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
