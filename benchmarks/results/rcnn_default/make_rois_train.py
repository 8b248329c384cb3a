"""Rebuild ``rois_train``: the default ROI set restricted to patients outside the R-CNN's test
split, so that the classifier the R-CNN starts from never saw a test patient.

    python benchmarks/results/rcnn_default/make_rois_train.py SYNTH_DIR SPLIT_JSON OUT_DIR

SYNTH_DIR is a ``calcsdk synth`` output (``annotations.json``, ``rois/index.csv``); SPLIT_JSON
is a run's ``split.json`` (its ``test`` image paths, matched by file name). OUT_DIR gets the
filtered ``index.csv`` and symbolic links to the three representation folders. Session 7 made
this folder by hand; this script, written in session 9, reproduces its recorded count
(4,403 of 5,000 ROIs).
"""

import csv
import json
import sys
from pathlib import Path

synth, split_path, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
images = json.loads((synth / "annotations.json").read_text())["images"]
patient_of = {Path(i["file_name"]).name: i["patient_id"] for i in images}
test = {patient_of[Path(p).name] for p in json.loads(split_path.read_text())["test"]}
with open(synth / "rois" / "index.csv", newline="") as f:
    reader = csv.DictReader(f)
    rows = list(reader)
    fields = reader.fieldnames
kept = [r for r in rows if r["patient_id"] not in test]
out.mkdir(parents=True, exist_ok=True)
with open(out / "index.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(kept)
for kind in ("grayscale", "binary", "filtered"):
    link = out / kind
    if not link.exists():
        link.symlink_to((synth / "rois" / kind).resolve())
print(f"{len(kept)} of {len(rows)} ROIs kept ({len(test)} test patients excluded) -> {out}")
