"""The validation curves of training runs, one table per run, from their log.jsonl (what `python -m model train`
writes at each validation):

    python tools/learning_curves.py training/compact_s training/compact_s_gpu training/compact_s_gpu2

Columns: the step, the homography AUC@3/5/10 and the median fine error on the held-out photos, and the relative-pose
AUC@5/10/20 on held-out scenes where the run had --val_scenes. Chains of runs read left to right as one curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = (("val_auc@3", "AUC@3"), ("val_auc@5", "AUC@5"), ("val_auc@10", "AUC@10"), ("val_fine_err_px", "fine px"),
           ("val_pose_auc@5", "pose@5"), ("val_pose_auc@10", "pose@10"), ("val_pose_auc@20", "pose@20"))


def validations(run: Path) -> list[dict[str, float]]:
    """The log's validation records (those with a validation AUC), in order."""
    lines = (run / "log.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if "val_auc@3" in record]


def table(run: Path, records: list[dict[str, float]]) -> str:
    """One run's curve as a Markdown table (only the columns it logged)."""
    shown = [(key, name) for key, name in COLUMNS if any(key in record for record in records)]
    rows = [f"{run} ({len(records)} validations)", "| step | " + " | ".join(name for _, name in shown) + " |",
            "|---" * (len(shown) + 1) + "|"]
    for record in records:
        values = [f"{record[key]:.3f}" if key in record else "" for key, _ in shown]
        rows.append(f"| {record['step']} | " + " | ".join(values) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (with a log.jsonl)")
    args = parser.parse_args()
    for run in args.runs:
        if not (run / "log.jsonl").is_file():
            print(f"error: {run} has no log.jsonl; give run folders of `python -m model train`", file=sys.stderr)
            return 2
    print("\n\n".join(table(run, validations(run)) for run in args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
