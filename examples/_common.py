"""Shared helpers of the worked examples (examples/*.py); not part of the harness API.

The examples drive the public command line (``python -m harness ...``) exactly as a user would,
print every command before running it, and summarise the run folders into Markdown tables.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


# -- command line --------------------------------------------------------------------------------
def base_parser(description: str, *, default_out: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="folder holding busbra/ and hippocampus/ (default: <repo>/../shared/data)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "examples" / default_out,
                        help="work folder: generated cards, trained models, run folders, RESULTS.md")
    parser.add_argument("--time-budget", type=float, default=5.0,
                        help="training budget per model in minutes (harness train --time-budget)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for training (harness train --threads; default 1, bit-for-bit reproducible)")
    parser.add_argument("--iters", type=int, default=None,
                        help="training iterations per epoch (harness train --iters; default: the trainer's 50)")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on a subset of about N cases (a quick check of the pipeline; the "
                             "documented figures use all cases)")
    parser.add_argument("--limit", type=int, default=None,
                        help="evaluate only the first N cases of each run (harness run --limit)")
    parser.add_argument("--severities", default=None,
                        help="comma-separated severities to run instead of the suites' (e.g. 1,3 for a quick look)")
    parser.add_argument("--families", default=None,
                        help="comma-separated perturbation families to keep from the suites (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="harness run --workers")
    parser.add_argument("--retrain", action="store_true",
                        help="train again even when the work folder already holds a trained model")
    return parser


def require_data(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise a clear message and exit 3 (bad input)."""
    if not path.exists():
        print(f"error: {what} not found at {path}.\n"
              f"These examples use the real datasets that sit beside the repository in ../shared/data "
              f"(see docs/examples.md); pass --data-root FOLDER if yours are elsewhere.", file=sys.stderr)
        raise SystemExit(3)
    return path


# -- running the harness -------------------------------------------------------------------------
def harness(*args: Any, ok: Iterable[int] = (0,)) -> int:
    """Run ``python -m harness ARGS`` from the repository root, echoing the command; return the exit
    code, or stop the example when it is not in ``ok``."""
    argv = [str(a) for a in args]
    print("\n$ harness " + " ".join(shlex.quote(a) for a in argv), flush=True)
    start = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "harness", *argv], cwd=REPO)
    print(f"  -> exit code {code} after {time.monotonic() - start:.0f} s", flush=True)
    if code not in tuple(ok):
        print(f"error: `harness {argv[0]}` exited {code}; see its output above", file=sys.stderr)
        raise SystemExit(code)
    return code


def train(data: Path, out: Path, args: argparse.Namespace, *, dims: int, extra: Iterable[str] = ()) -> Path:
    """Train the reference U-Net unless ``out`` already holds a model card; return the card."""
    card = out / "model.toml"
    if card.is_file() and not args.retrain:
        print(f"\n(using the model trained earlier: {card}; --retrain to train again)")
        return card
    if out.exists():
        shutil.rmtree(out)
    cmd = ["train", "--data", data, "--out", out, "--dims", dims, "--time-budget", args.time_budget,
           "--seed", 0, "--no-progress", *extra]
    if args.iters:
        cmd += ["--iters", args.iters]
    if args.threads:
        cmd += ["--threads", args.threads]
    harness(*cmd)
    return card


def evaluate(suite: Path, model: Path, data: Path, out: Path, args: argparse.Namespace,
             *extra: Any) -> int:
    """``harness run`` into a fresh ``out``; gate outcomes (exit 0 or 1) are results, not errors."""
    if out.exists():
        shutil.rmtree(out)
    suite = quick_suite(suite, out.parent / f"{suite.stem}.quick.toml", args.severities, args.families)
    cmd: list[Any] = ["run", "--suite", suite, "--model", model, "--data", data, "--out", out, *extra]
    if args.limit:
        cmd += ["--limit", args.limit]
    if args.workers:
        cmd += ["--workers", args.workers]
    return harness(*cmd, ok=(0, 1))


# -- data preparation ----------------------------------------------------------------------------
def link_cases(pairs: Iterable[tuple[Path, Path]], folder: Path) -> None:
    """Fill ``folder`` with symbolic links to ``(source, link name)`` pairs (a subset of a dataset
    without copying it)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for source, name in pairs:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(source.resolve(), target)
        except OSError:  # no symlinks (some Windows setups): copy instead
            shutil.copyfile(source, target)


def relative(path: Path, card: Path) -> str:
    """``path`` relative to the folder of ``card`` (card paths are relative to the card), with /."""
    return Path(os.path.relpath(Path(path).resolve(), Path(card).resolve().parent)).as_posix()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not (isinstance(value, float) and math.isinf(value)) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_toml(doc: dict[str, Any], path: Path, *, header: str = "") -> Path:
    """Write a card or suite: top-level tables and arrays of tables with simple values."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in doc.items():
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            lines += ["", f"[[{key}]]" if isinstance(value, list) else f"[{key}]"]
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).lstrip() + "\n", encoding="utf-8")
    return path


def quick_suite(suite: Path, target: Path, severities: str | None, families: str | None = None) -> Path:
    """``suite`` itself, or a copy restricted to some severities (``--severities 1,3``) and
    families (``--families blur,fgsm``; a suite keeps at least its first family)."""
    if not severities and not families:
        return suite
    doc = tomllib.loads(suite.read_text(encoding="utf-8"))
    notes = []
    if families:
        keep = {f.strip() for f in families.split(",") if f.strip()}
        specs = doc.get("perturbations", [])
        doc["perturbations"] = [p for p in specs if p["family"] in keep or p.get("name") in keep] or specs[:1]
        names = {p.get("name", p["family"]) for p in doc["perturbations"]}
        for gate in doc.get("gates", []):
            if "families" in gate:
                gate["families"] = [f for f in gate["families"] if f in names] or sorted(names)
        notes.append(f"families {sorted(names)}")
    if severities:
        wanted = sorted({int(s) for s in severities.split(",") if s.strip()})
        for spec in doc.get("perturbations", []):
            spec["severities"] = [s for s in spec.get("severities", [1, 2, 3, 4, 5]) if s in wanted] or wanted[:1]
        for gate in doc.get("gates", []):
            if "severities" in gate:
                gate["severities"] = [s for s in gate["severities"] if s in wanted] or wanted[:1]
        notes.append(f"severities {wanted}")
    return write_toml(doc, target, header=f"{suite.name} restricted to {', '.join(notes)} (quick run)")


# -- summaries -----------------------------------------------------------------------------------
def per_case(run: Path, metric: str) -> pd.DataFrame:
    """One row per case x perturbation x severity: ``metric`` averaged over labels and repeats."""
    records = pd.read_csv(run / "records.csv", dtype={"case_id": str}, keep_default_na=False)
    ok = records[records["status"] == "OK"].copy()
    ok[metric] = pd.to_numeric(ok[metric])
    return ok.groupby(["case_id", "perturbation", "severity"], as_index=False)[metric].mean()


def markdown(frame: pd.DataFrame, *, digits: int = 3) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def severity_curves(run: Path, metric: str) -> pd.DataFrame:
    """Mean ``metric`` per family (rows) and severity (columns 0..5); severity 0 is clean."""
    values = per_case(run, metric)
    clean = float(values.loc[values["perturbation"] == "clean", metric].mean())
    table = values[values["perturbation"] != "clean"].pivot_table(index="perturbation", columns="severity",
                                                                  values=metric, aggfunc="mean")
    table.insert(0, 0, clean)
    table.columns = [f"sev {c}" for c in table.columns]
    return table.reset_index().rename(columns={"perturbation": "family"})


def worst_cases(run: Path, metric: str, k: int = 5, *, higher_is_better: bool = True) -> pd.DataFrame:
    """The ``k`` worst perturbed items, with the same case's clean value beside them."""
    values = per_case(run, metric)
    clean = values[values["perturbation"] == "clean"].set_index("case_id")[metric]
    pert = values[values["perturbation"] != "clean"].copy()
    pert["clean"] = pert["case_id"].map(clean)
    pert = pert.sort_values(metric, ascending=higher_is_better).head(k)
    return pert[["case_id", "perturbation", "severity", "clean", metric]]


def gates(run: Path) -> tuple[str, pd.DataFrame]:
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    frame = pd.DataFrame(summary["gates"], columns=["name", "outcome", "value", "threshold", "detail"])
    frame["value"] = pd.to_numeric(frame["value"])
    return summary.get("outcome", "?"), frame[["name", "outcome", "value", "threshold"]]


def write_results(out: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    text = [f"# {title}", "", f"Written by `{Path(sys.argv[0]).name}` on {time.strftime('%Y-%m-%d %H:%M')}.",
            f"Command: `{' '.join(shlex.quote(a) for a in sys.argv)}`", ""]
    for heading, body in sections:
        text += [f"## {heading}", "", body, ""]
    path = out / "RESULTS.md"
    path.write_text("\n".join(text), encoding="utf-8")
    print("\n" + "\n".join(text))
    print(f"(written to {path})")
    return path


def training_summary(model_dir: Path) -> str:
    record = json.loads((model_dir / "training.json").read_text(encoding="utf-8"))
    test = record.get("test_dice") or {}
    split = record.get("split", {})
    sizes = ", ".join(f"{k} {len(v)}" for k, v in split.items() if isinstance(v, list))
    return (f"`{record.get('command', '')}`: {record.get('epochs_run')} epoch(s) in "
            f"{record.get('wall_seconds', float('nan')) / 60:.1f} min wall; split {sizes} "
            f"({split.get('description', '')}); best validation Dice {record.get('best_val_dice_mean', float('nan')):.3f}; "
            "test Dice " + ", ".join(f"{k} {v:.3f}" for k, v in test.items()))
