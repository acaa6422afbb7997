#!/usr/bin/env bash
# `make demo`: the pipeline end to end on generated data (no downloads), ending with a summary table.
set -euo pipefail
OUT=${DEMO_OUT:-demo_out}
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)

facecli models
python - "$OUT" <<'PY'
import sys
from pathlib import Path
import cv2
from skimage import data
folder = Path(sys.argv[1]) / "photos" / "astronaut"
folder.mkdir(parents=True)
cv2.imwrite(str(folder / "eileen_collins.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
PY
facecli align "$OUT/photos" "$OUT/aligned" --size 112 --align-template arcface

facecli synth "$OUT/faces" --identities 300 --images 8 --size 32 --seed 0
facecli annotate "$OUT/faces" --out "$OUT" --csv "$OUT/train.csv" \
    --holdout 20 --num-pairs 200 --pairs-out "$OUT/pairs.txt" --check

# A short triplet run (8 epochs, under a minute on 2 cores) on the 280 training identities,
# validated each epoch on pairs of the 20 held-out identities.
facecli train --data "$OUT/cls_train.txt" --loss triplet --backbone timm/resnet10t --img-size 32 \
    --epochs 8 --batch-size 64 --lr 2e-3 --warmup-epochs 0.5 --run-dir "$OUT/run" \
    --val-pairs "$OUT/pairs.txt" --val-root "$OUT/faces" --device cpu
cp "$OUT/run/best.safetensors" "$OUT/demo_model.safetensors"
facecli eval -c "$OUT/demo_model.safetensors" --pairs "$OUT/pairs.txt" --root "$OUT/faces" \
    --device cpu --report "$OUT/eval.json" --plot "$OUT/roc.png" --scores "$OUT/scores.csv" --cache "$OUT/cache"
facecli sweep -c "$OUT/demo_model.safetensors" --pairs "$OUT/pairs.txt" --root "$OUT/faces" \
    --device cpu --cache "$OUT/cache" --out "$OUT/sweep.csv" --plot "$OUT/sweep.png" --save-threshold
python - "$OUT" <<'PY'
import sys
import pandas as pd
out = sys.argv[1]
pairs = pd.read_csv(f"{out}/scores.csv")[["image1", "image2"]]
pairs.to_csv(f"{out}/test_pairs.csv", index=False)  # an unlabelled CSV, as users submit
PY
facecli predict -c "$OUT/demo_model.safetensors" --pairs "$OUT/test_pairs.csv" --root "$OUT/faces" \
    --device cpu --cache "$OUT/cache" --out "$OUT/sub.csv"

# Two photos of one held-out person (exit code 1 means "different", an answer, not a failure)
held_out=$(ls "$OUT/faces" | tail -1)
facecli compare "$OUT/faces/$held_out/${held_out}_0001.jpg" "$OUT/faces/$held_out/${held_out}_0002.jpg" \
    -c "$OUT/demo_model.safetensors" --device cpu --show "$OUT/compare.png" --json > "$OUT/compare.json" \
    || [ $? -eq 1 ]
# Embeddings of the 10 last held-out identities, and their map
root=$(cd "$OUT" && pwd)
for d in $(ls "$OUT/faces" | tail -10); do
    for f in "$root/faces/$d"/*.jpg; do echo "$d;$f"; done
done > "$OUT/held_out.txt"
facecli embed "$OUT/held_out.txt" -c "$OUT/demo_model.safetensors" --device cpu --out "$OUT/embeddings.npy" \
    --plot "$OUT/embedding_map.png"

facecli export -c "$OUT/demo_model.safetensors" --format onnx --out "$OUT/demo_model.onnx"
facecli eval -c "$OUT/demo_model.onnx" --backend onnx --pairs "$OUT/pairs.txt" --root "$OUT/faces" \
    --report "$OUT/eval_onnx.json"

python - "$OUT" "$start" <<'PY'
import json, sys, time
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
report = json.loads((out / "eval.json").read_text())
import csv
align = list(csv.DictReader((out / "aligned" / "align_report.csv").open()))
table.add_row("photo aligned (MTCNN, ArcFace 112x112 template)", align[0]["status"])
table.add_row("training epochs (triplet, timm/resnet10t 32 px)", str(len((out / "run" / "metrics.csv").read_text().splitlines()) - 1))
table.add_row("trained model: held-out 10-fold accuracy", f"{report['accuracy_mean']:.3f} +- {report['accuracy_std']:.3f}")
table.add_row("trained model AUC", f"{report['auc']:.3f}")
onnx = json.loads((out / "eval_onnx.json").read_text())
table.add_row("same model exported to ONNX: AUC (onnxruntime)", f"{onnx['auc']:.3f}")
table.add_row("unique images embedded (eval)", str(report["forward_passes"]))
table.add_row("predictions written (sub.csv)", str(len((out / "sub.csv").read_text().splitlines()) - 1))
compared = json.loads((out / "compare.json").read_text())["pairs"][0]
decision = "same" if compared["same"] else ("different" if compared["same"] is False else "no threshold")
table.add_row("compare: two photos of one held-out person", f"cosine {compared['score']:.3f}, {decision}")
table.add_row("embeddings written (embed, 10 held-out identities)", str(len((out / "embeddings.csv").read_text().splitlines()) - 1))
table.add_row("wall time (s)", f"{time.time() - start:.1f}")
Console().print(table)
PY
