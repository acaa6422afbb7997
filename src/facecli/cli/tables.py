"""Rich tables of the library's results, one per command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from facecli.console import printable

if TYPE_CHECKING:
    from facecli.cleaning import CleanReport
    from facecli.data.annotation import AnnotationReport
    from facecli.models.info import BackboneInfo

MAX_LISTED = 20


def backbones_table(rows: list[BackboneInfo]) -> Table:
    """The `facecli models` table."""
    table = Table(title="facecli backbones (trained from scratch; import published weights with facecli import)")
    for column in ("name", "input", "params (M)", "GFLOPs", "embedding", "source"):
        table.add_column(
            column,
            justify="right" if column in ("params (M)", "GFLOPs", "embedding") else "left",
            no_wrap=column != "source",
        )
    for r in rows:
        table.add_row(
            r.name,
            f"{r.input_size}x{r.input_size}",
            f"{r.params / 1e6:.2f}",
            f"{r.gflops:.2f}",
            str(r.embedding_size),
            r.source,
        )
    return table


def registry_table(title: str, entries: dict[str, object], options: dict[str, dict] | None = None) -> Table:
    """Names of a registry with the first line of each entry's docstring, and each entry's options with
    their defaults where given."""
    table = Table(title=title)
    table.add_column("name", no_wrap=True)
    table.add_column("what it is")
    if options is not None:
        table.add_column("options (default)")
    for name, entry in entries.items():
        row = [name, (entry.__doc__ or "").strip().splitlines()[0]]
        if options is not None:
            row.append(", ".join(f"{k} {v}" for k, v in options[name].items()))
        table.add_row(*row)
    return table


def import_sources_table(sources: dict) -> Table:
    """The `facecli import --list` table."""
    table = Table(title="facecli import sources")
    for column in ("--arch", "backbone", "input", "preprocessing", "where users get it", "published LFW"):
        table.add_column(column, overflow="fold", no_wrap=column == "--arch")
    for name, s in sources.items():
        table.add_row(name, s.backbone, f"{s.input_size}x{s.input_size}", s.preprocessing, s.where, s.published_lfw)
    return table


def verification_table(r) -> Table:  # noqa: ANN001
    """The `facecli eval` table."""
    unit = "distance <" if r.metric == "euclidean" else "similarity >"
    table = Table(title=f"verification ({r.metric}, {r.folds}-fold)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("pairs (genuine / impostor)", f"{r.pairs} ({r.genuine} / {r.impostor})"),
        ("accuracy (mean +- std over folds)", f"{r.accuracy_mean:.4f} +- {r.accuracy_std:.4f}"),
        ("AUC", f"{r.auc:.4f}"),
        ("EER", f"{r.eer:.4f}"),
        *[(f"TAR @ FAR={far}", f"{tar:.4f}") for far, tar in r.tar_at_far.items()],
        (f"best threshold on all pairs (same if {unit} t)", f"{r.best_threshold:.4f} (accuracy {r.best_accuracy:.4f})"),
    ]
    if r.images is not None:
        rows.append(("unique images / forward passes", f"{r.images} / {r.forward_passes}"))
    if r.reject_curve is not None:  # the model has a quality score: error as the worst pairs are set aside
        curve = r.reject_curve
        shown = ", ".join(f"{share:.0%}: {error:.4f}" for share, error in zip(curve.rejected, curve.error, strict=True))
        rows.append(("error vs reject (lowest-quality pairs first)", shown))
    for name, value in rows:
        table.add_row(name, value)
    return table


def sweep_table(result, saved_to=None) -> Table:  # noqa: ANN001
    """The `facecli sweep` summary: the chosen threshold and its rates."""
    row = result.table.iloc[(result.table["threshold"] - result.chosen).abs().argmin()]
    table = Table(title=f"threshold sweep ({len(result.table)} thresholds, selected by {result.select})")
    for column in ("threshold", "accuracy", "precision", "recall", "f1", "far", "frr"):
        table.add_column(column, justify="right")
    table.add_row(*[f"{row[c]:.4f}" for c in ("threshold", "accuracy", "precision", "recall", "f1", "far", "frr")])
    if saved_to is not None:
        table.caption = f"saved into {saved_to}"
    return table


def identification_table(r) -> Table:  # noqa: ANN001
    """The `facecli eval-identify` table."""
    table = Table(title="1:N identification")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("probes in the gallery / unknown", f"{r.probes_known} / {r.probes_unknown}")
    table.add_row("rank-1", f"{r.rank1:.4f}")
    table.add_row("rank-5", f"{r.rank5:.4f}")
    for far, rate in r.dir_at_far.items():
        table.add_row(f"DIR @ FAR={far} (open set)", f"{rate:.4f}")
    return table


def _listing(title: str, items: list[str]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("item", overflow="fold")
    for item in items[:MAX_LISTED]:
        table.add_row(Text(printable(item)))
    if len(items) > MAX_LISTED:
        table.add_row(f"... and {len(items) - MAX_LISTED} more")
    return table


def annotation_tables(report: AnnotationReport) -> list[Table]:
    """The data report: a summary, then every problem found (unreadable images listed with the reason)."""
    scan = report.scan
    low, median, high = report.images_per_identity
    summary = Table(title=Text(f"data report: {printable(scan.root)}"), show_header=False, title_justify="left")
    summary.add_column("what")
    summary.add_column("value", justify="right")
    rows = [
        ("identities", len(scan.identities)),
        ("images (usable)", scan.image_count),
        ("images per identity min / median / max", f"{low} / {median:g} / {high}"),
        ("identities with < 2 images (no triplet positives)", len(report.few_images)),
        ("empty identities", len(scan.empty_identities)),
        ("unreadable or corrupt images (left out)", len(scan.bad_images)),
        ("exact duplicate groups", len(scan.duplicates)),
        ("other files skipped", len(scan.skipped)),
        ("training identities", len(report.train_identities)),
        ("held-out identities (pairs only)", len(report.holdout)),
    ]
    if report.pairs_format:
        rows.append(("pairs written", f"{report.pairs_count} ({report.pairs_format} format)"))
    for what, value in rows:
        summary.add_row(what, str(value))
    tables = [summary]
    if scan.bad_images:
        tables.append(
            _listing("unreadable or corrupt images (left out)", [f"{p}: {why}" for p, why in scan.bad_images])
        )
    if scan.empty_identities:
        tables.append(_listing("empty identities", scan.empty_identities))
    if report.few_images:
        tables.append(_listing("identities with fewer than 2 images", report.few_images))
    if scan.duplicates:
        tables.append(_listing("exact duplicates (same content)", [", ".join(map(str, g)) for g in scan.duplicates]))
    if scan.skipped:
        tables.append(_listing("skipped files", [f"{p}: {why}" for p, why in scan.skipped]))
    return tables


def training_table(r) -> Table:  # noqa: ANN001
    """The summary at the end of `facecli train`."""
    table = Table(title=f"training run {r.run_dir} ({r.stopped})")
    table.add_column("")
    table.add_column("value", justify="right")
    last = r.last
    table.add_row("epochs / steps", f"{r.epochs_done} / {r.steps}")
    if last:
        table.add_row("last epoch loss", f"{last['loss']:.4f}")
        table.add_row("images/s (last epoch)", f"{last['images_per_s']:.1f}")
    if last.get("val_accuracy") is not None:
        table.add_row("last validation accuracy", f"{last['val_accuracy']:.4f} +- {last['val_std']:.4f}")
        table.add_row("last validation AUC", f"{last['val_auc']:.4f}")
    if r.best_epoch is not None:
        what = f"accuracy {r.best_accuracy:.4f}" if r.best_accuracy is not None else "lowest loss"
        if r.best_score is not None:
            what += f", chosen by the recent validations' mean AUC {r.best_score:.4f}"
        table.add_row("best epoch", f"{r.best_epoch} ({what}) -> best.safetensors")
    if r.bad_images:
        table.add_row("images that failed to decode", f"{r.bad_images} (bad_images.txt)")
    table.add_row("wall time (s)", f"{r.seconds:.1f}")
    return table


def alignment_table(r) -> Table:  # noqa: ANN001
    """The summary of `facecli align`."""
    table = Table(title=f"facecli align -> {r.out_dir}")
    table.add_column("photos")
    table.add_column("count", justify="right")
    for status in ("aligned", "unaligned", "no face", "unreadable", "exists"):
        table.add_row(status, str(r.count(status)))
    table.add_row("report", str(r.out_dir / "align_report.csv"))
    return table


def clean_tables(report: CleanReport) -> list[Table]:
    """`clean`'s report: a summary, the worst suspects and the identities that look like one person."""
    summary = Table(title="clean report", show_header=False, title_justify="left")
    summary.add_column("what")
    summary.add_column("found")
    summary.add_row("images", str(report.images))
    summary.add_row("identities", str(report.identities))
    summary.add_row("centres from", report.centres)
    share = report.suspects / max(report.images, 1)
    summary.add_row("suspects", f"{report.suspects} ({share:.1%}), left out of cls_train.txt")
    summary.add_row("one person, two names?", str(len(report.same_person)))
    summary.add_row("written to", printable(report.out_dir))
    tables = [summary]
    if report.worst:
        worst = Table(title="worst suspects (all in suspects.csv)", title_justify="left")
        for column in ("image", "labelled", "angle", "nearer"):
            worst.add_column(column)
        for path, identity, angle, nearest in report.worst[:10]:
            worst.add_row(printable(path), printable(identity), f"{angle:.1f}", printable(nearest))
        tables.append(worst)
    if report.same_person:
        pairs = Table(title="identities whose centres nearly coincide (same_person.csv)", title_justify="left")
        for column in ("identity", "other identity", "angle"):
            pairs.add_column(column)
        for a, b, angle in report.same_person[:10]:
            pairs.add_row(printable(a), printable(b), f"{angle:.1f}")
        tables.append(pairs)
    return tables


def int8_check_table(check) -> Table:  # noqa: ANN001
    """`facecli export --int8 --check-pairs`: both models on the user's pairs, and the int8 model's threshold."""
    table = Table(title="int8 against fp32 on the check pairs")
    for column in ("", "fp32", "int8"):
        table.add_column(column, justify="right")
    table.add_row("accuracy", f"{check.fp32.accuracy_mean:.4f}", f"{check.int8.accuracy_mean:.4f}")
    for far, tar in check.fp32.tar_at_far.items():
        table.add_row(f"TAR @ FAR={far}", f"{tar:.4f}", f"{check.int8.tar_at_far[far]:.4f}")
    table.caption = (
        f"largest score difference {check.largest_difference:.4f}; the int8 file's own threshold "
        f"{check.threshold:.4f} (cosine, chosen on these pairs as sweep --save-threshold chooses)"
    )
    return table
