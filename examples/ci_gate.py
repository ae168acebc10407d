"""Worked example 3: gating a model release in CI with --baseline (docs/examples.md, docs/ci.md).

Release 1.0 is the BUS-BRA model trained on all four scanners (example 2); the candidate release
1.1 was trained on the two GE scanners only. CI evaluates the candidate with the same suite on
the same test images and compares it, case by case, with the stored run of release 1.0:

    harness run --suite examples/busbra_fairness.toml --model <1.1>/model.toml \
        --data <test card> --baseline <run of 1.0> --out ci/candidate
    harness compare <run of 1.0> ci/candidate --max-drop dice=0.02

The exit code of `harness run` is the CI verdict (0 pass, 1 a gate failed, 2 the evaluation broke,
3 bad configuration); ci/candidate/junit.xml holds one test per gate for the CI's test view.

    python examples/ci_gate.py                       # reuses example 2's models and run if present

Needs ../shared/data/busbra (or --data-root); exits 3 with a message when it is absent.
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as ex  # noqa: E402
import busbra_fairness_shift as bus  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent
SUITE = EXAMPLES / "busbra_fairness.toml"


def junit_summary(path: Path) -> tuple[str, pd.DataFrame]:
    root = ET.parse(path).getroot()
    counts = {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")}
    rows = []
    for case in root.iter("testcase"):
        kind = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        rows.append({"testcase": case.get("name"), "junit": kind})
    head = ", ".join(f"{k} {v}" for k, v in counts.items())
    return head, pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = ex.base_parser(__doc__.splitlines()[0], default_out="ci")
    parser.add_argument("--busbra-out", type=Path, default=ex.REPO / "reports" / "examples" / "busbra",
                        help="work folder of examples/busbra_fairness_shift.py (models and the release-1.0 run)")
    args = parser.parse_args(argv)
    out, work = args.out.resolve(), args.busbra_out.resolve()
    cards = bus.prepare(args, work)

    release_10 = ex.train(cards["all"], work / "model_all", args, dims=2)
    release_11 = ex.train(cards["large"], work / "model_large", args, dims=2)
    previous = work / "fairness"  # example 2's run of release 1.0 with the same suite and data
    if not (previous / "summary.json").is_file():
        ex.evaluate(SUITE, release_10, cards["test"], previous, args)

    candidate = out / "candidate"
    code = ex.evaluate(SUITE, release_11, cards["test"], candidate, args, "--baseline", previous)
    compare = out / "compare"
    compare_code = ex.harness("compare", previous, candidate, "--out", compare, "--max-drop", "dice=0.02",
                              "--metrics", "dice", ok=(0, 1))

    outcome, gate_table = ex.gates(candidate)
    comparison = json.loads((compare / "compare.json").read_text(encoding="utf-8"))
    head, tests = junit_summary(candidate / "junit.xml")
    verdict = {0: "release may ship", 1: "release blocked: a gate failed",
               2: "evaluation incomplete: fix the harness/model error first", 3: "bad configuration"}[code]
    sections = [
        ("Models", f"* release 1.0: `{release_10}` (all scanners)\n* release 1.1: `{release_11}` (GE scanners only)"),
        (f"`harness run --baseline`: {outcome}, exit code {code} ({verdict})", ex.markdown(gate_table)),
        (f"junit.xml: {head}", ex.markdown(tests)),
        (f"`harness compare`: {comparison['outcome']} ({comparison['mode']}), exit code {compare_code}",
         ex.markdown(pd.DataFrame(comparison["gates"], columns=["name", "outcome", "value", "threshold"]))),
    ]
    ex.write_results(out, "Worked example 3: gating a release in CI", sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
