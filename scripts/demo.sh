#!/usr/bin/env bash
# `make demo`: the pipeline end to end on generated data (no downloads), ending with a summary table.
set -euo pipefail
OUT=${DEMO_OUT:-demo_out}
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)

facecli models
facecli synth "$OUT/faces" --identities 40 --images 12 --size 64 --seed 0
facecli annotate "$OUT/faces" --out "$OUT" --csv "$OUT/train.csv" \
    --holdout 10 --pairs 200 --pairs-out "$OUT/pairs.txt" --check

python - "$OUT" "$start" <<'PY'
import sys, time
from pathlib import Path
from rich.console import Console
from rich.table import Table

out, start = Path(sys.argv[1]), float(sys.argv[2])
table = Table(title="facecli demo")
table.add_column("step")
table.add_column("result", justify="right")
images = sum(1 for _ in (out / "faces").rglob("*.jpg"))
table.add_row("synthetic images", str(images))
table.add_row("training annotations (cls_train.txt)", str(len((out / "cls_train.txt").read_text().splitlines())))
table.add_row("training identities", str(len((out / "classes.txt").read_text().splitlines())))
table.add_row("validation pairs (held-out identities)", str(len((out / "pairs.txt").read_text().splitlines()) - 1))
table.add_row("wall time (s)", f"{time.time() - start:.1f}")
Console().print(table)
PY
