"""Command line: ``harness run | list | validate-suite | validate-data | validate-model | train | report | compare |
perturbations``.

Exit codes: 0 all gates pass (WARN allowed), 1 a gate failed, 2 harness/model error,
3 bad configuration, usage or input (also for usage errors the CLI framework would exit 2 on).
"""
from __future__ import annotations

import contextlib
import math
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from harness.errors import ConfigError
from harness.terminal import make_console
from harness.options import COMPARE_MODES, CORRECTIONS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Robustness and fairness evaluation of medical image segmentation models.")
console = make_console(stderr=True)
out_console = make_console()
_DEBUG = {"on": False}

OUTCOME_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "red", "ERROR": "magenta", "INCONCLUSIVE": "white"}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    _DEBUG["on"] = debug or _DEBUG["on"]


class _Progress:
    """A rich progress bar with items/s and ETA; ``progress(n)`` advances by n items."""

    def __init__(self, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._bar = Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[rate]}"),
                             TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                             console=console, transient=False)
        self._task = self._bar.add_task("run", total=total, rate="")
        self._bar.start()

    def __call__(self, n: int) -> None:
        self._bar.advance(self._task, n)
        speed = self._bar.tasks[0].speed
        self._bar.update(self._task, rate=f"{speed:5.1f} items/s" if speed else "")

    def skip(self, n: int) -> None:
        """Items finished by an earlier run (--resume): shown as done, not counted in items/s."""
        self._bar.reset(self._task, completed=n)

    def close(self) -> None:
        self._bar.stop()


def _print_summary(result: Any) -> None:
    table = Table(title=escape(f"{result.summary['suite']['name']}: {result.outcome}"), show_lines=False)
    for col in ("gate", "outcome", "value", "threshold", "detail"):
        table.add_column(col, overflow="fold")
    for gate in result.gates:
        style = OUTCOME_STYLE.get(gate.outcome, "")
        value = "–" if gate.value is None or math.isnan(gate.value) else f"{gate.value:.4g}"
        threshold = "–" if gate.threshold is None else f"{gate.threshold:.4g}"
        detail = "" if gate.outcome == "PASS" else gate.detail  # PASS rows stay one line; details in the report
        table.add_row(escape(gate.name), f"[{style}]{gate.outcome}[/]", value, threshold, escape(detail))
    out_console.print(table)
    for note in result.summary.get("notes", []):
        out_console.print(f"note: {escape(note)}", soft_wrap=True)
    clean = result.summary["clean"]
    parts = [f"{m} " + ", ".join(f"{k} {'n/a' if v is None or math.isnan(v) else format(v, '.3f')}" for k, v in vals.items())
             for m, vals in clean.items()]
    out_console.print(escape("clean: " + " | ".join(parts)))
    report = result.out / "report.html"
    where = f"report: {report}" if report.is_file() else f"no report (see run-complete); results: {result.out}"
    out_console.print(escape(f"{where}  (exit code {result.exit_code})"))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM (``kill``, ``timeout``, a cancelled CI job) as Ctrl-C: the run stops its workers
    and external programs and writes what finished with a failing run-complete gate."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def run(
    suite: str = typer.Option("robustness", "--suite", "-s", help="Bundled suite name or path to a suite TOML."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model card TOML or model file (.ts/.pt/.onnx); default: bundled reference U-Net."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="phantom2d, phantom3d, an MSD/nnU-Net folder or a dataset card TOML; default: the suite's (phantom2d)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default reports/<suite>-<timestamp>/)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Override the suite's seed."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N cases."),
    held_out: bool = typer.Option(False, "--held-out", help="Evaluate only cases the model was not trained or "
                                  "validated on, per the training.json `harness train` wrote beside its card."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: CPU cores)."),
    cohorts: Optional[str] = typer.Option(None, "--cohorts", help="Comma-separated metadata attributes; overrides the suite's cohorts."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run in the same --out folder."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="With --resume: also run again the items recorded as ERROR (timeouts, dead workers, transient model failures)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 also on WARN and INCONCLUSIVE gates."),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or dask."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler to attach to."),
    item_timeout: Optional[float] = typer.Option(None, "--item-timeout", min=0.001, max=1e6, help="Seconds allowed per work item (at most 1e6); slower items become ERROR records."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A previous run folder: gate on regression against it."),
    pdf: bool = typer.Option(False, "--pdf", help="Also write report.pdf (needs headless Chromium)."),
) -> None:
    """Evaluate a model with a suite; write report.html, records.csv, summary.json, junit.xml."""
    from harness.pipeline import RunOptions, run as run_pipeline

    options = RunOptions(suite=suite, model=model, data=data, out=out, seed=seed, limit=limit, workers=workers,
                         cohorts=cohorts,  # "a,b": RunOptions splits it
                         resume=resume, retry_errors=retry_errors, strict=strict, executor=executor, scheduler=scheduler,
                         item_timeout=item_timeout, baseline=baseline, pdf=pdf, held_out=held_out,
                         command_line=" ".join(shlex.quote(a) for a in ["harness", *sys.argv[1:]]))
    with _sigterm_as_interrupt():  # a cancelled CI job: outputs written, programs killed, exit 2
        result = run_pipeline(options, progress_factory=_Progress)
    _print_summary(result)
    raise typer.Exit(result.exit_code)


@app.command("validate-suite")
def validate_suite(suite: str = typer.Argument(..., help="Suite name or TOML path.")) -> None:
    """Check a suite file against the schema (exit 0 valid, 3 invalid)."""
    from harness.suite import load_suite

    parsed = load_suite(suite, build_families=True)  # every problem in one list, families and options too
    out_console.print(f"{parsed.path}: valid ({len(parsed.perturbations)} perturbations, {len(parsed.gates)} gates, "
                      f"metrics {', '.join(parsed.metrics)})")


@app.command("list")
def list_(what: str = typer.Argument(..., help="suites | perturbations | metrics | gates")) -> None:
    """List what is available: suites, perturbations (with modality tags), metrics, gate kinds."""
    table = Table()
    if what == "suites":
        from harness.suite import bundled_suites, load_suite

        suites = bundled_suites()
        table.add_column("suite", no_wrap=True), table.add_column("description", overflow="fold")
        # never cut (users copy it): on one line where it leaves the description room, else folded
        # onto more lines (an installed package's site-packages path in an 80-column CI log)
        longest = max((len(str(p)) for p in suites.values()), default=4)
        names = max((len(n) for n in suites), default=5)
        if longest + names + 20 <= out_console.width:  # borders and a narrow description column
            table.add_column("path", no_wrap=True, min_width=longest)
        else:
            table.add_column("path", overflow="fold", ratio=1)
            table.columns[1].ratio = 1
        for name, path in suites.items():
            table.add_row(name, load_suite(path).description, str(path))
    elif what == "perturbations":
        from harness.perturbations import available

        for col in ("perturbation", "modalities", "geometric", "parameter per severity 1..5"):
            table.add_column(col, overflow="fold")
        for name, cls in sorted(available().items()):
            table.add_row(name, ",".join(sorted(cls.modalities)), "yes" if cls.geometric else "", cls.parameter_doc)
    elif what == "metrics":
        from harness.metrics import available as metrics

        for col in ("metric", "better", "unit", "description"):
            table.add_column(col, overflow="fold")
        for name, info in metrics().items():
            table.add_row(name, "higher" if info.higher_is_better else "lower", info.unit, info.description)
    elif what == "gates":
        from harness.gates import check_kinds

        table.add_column("gate check")
        for kind in check_kinds():
            table.add_row(kind)
    else:
        raise ConfigError(f"harness list {what!r}: choose one of suites, perturbations, metrics, gates")
    out_console.print(table)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by `harness run`."),
    format: str = typer.Option("html", "--format", "-f", help="html (report.html), dossier (dossier.html) or all."),
    pdf: bool = typer.Option(False, "--pdf", help="Also write the PDF(s) through headless Chromium."),
) -> None:
    """Regenerate report.html / dossier.html (and junit.xml) from a run folder without re-running the model."""
    from harness.report.html import write_report
    from harness.report.junit import write_junit_from_summary
    from harness.report.rundir import load_run

    formats = {"html": ("html",), "dossier": ("dossier",), "all": ("html", "dossier")}
    if format not in formats:
        raise ConfigError(f"--format {format!r}: choose html, dossier or all")
    if pdf:
        from harness.report.pdf import require_chromium

        require_chromium()
    run = load_run(run_dir)
    write_junit_from_summary(run_dir, run.summary)
    for path in write_report(run_dir, formats=formats[format], pdf=pdf):  # type: ignore[arg-type]
        out_console.print(f"wrote {path}")


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="Reference run folder (the released model, or the reference site's run)."),
    run_b: Path = typer.Argument(..., help="Candidate run folder (the new model, or another site's run)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default reports/compare-<timestamp>/)."),
    mode: str = typer.Option("auto", "--mode", help=f"{' | '.join(COMPARE_MODES)} (auto: paired when the runs share cases)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all common)."),
    max_drop: Optional[str] = typer.Option(None, "--max-drop", help="Margin: one number, or dice=0.02,hd95=1 (default 0)."),
    alpha: float = typer.Option(0.05, "--alpha", min=0.0, max=1.0, help="Significance level after correction."),
    min_cases: int = typer.Option(5, "--min-cases", min=2, help="Fewer cases per run: INCONCLUSIVE."),
    rank_test: bool = typer.Option(False, "--rank-test", help="Wilcoxon (paired) / Mann-Whitney (unpaired) tests."),
    correction: str = typer.Option("holm", "--correction", help=f"{' | '.join(CORRECTIONS)}, across the comparisons of a metric."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap and permutation resampling."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 also on WARN and INCONCLUSIVE."),
) -> None:
    """Compare two finished runs: paired by case (model regression) or unpaired (site shift)."""
    from harness.compare import CompareOptions, compare_command, parse_max_drop

    options = CompareOptions(mode=mode, metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()) if metrics
                             else None, max_drop=parse_max_drop(max_drop), alpha=alpha, min_cases=min_cases,
                             rank_test=rank_test, correction=correction, seed=seed, strict=strict)  # type: ignore[arg-type]
    raise typer.Exit(compare_command(run_a, run_b, out=out, options=options))

def _register_optional_commands() -> None:
    """Commands whose implementation lives with its subsystem."""
    try:
        from harness.train.command import train_command

        app.command("train", help="Train the reference U-Net; writes a checkpoint and a model card.")(train_command)
    except ImportError:  # pragma: no cover - the trainer ships with the package
        pass
    try:
        from harness.models.command_line import validate_model_command

        app.command("validate-model", help="Run a model on one case and print what was found.")(validate_model_command)
    except ImportError:  # pragma: no cover
        pass
    from harness.datasets.command_line import validate_data_command

    app.command("validate-data", help="Check a dataset: files, pixels, classes, metadata (exit 0 valid, 3 problems).")(
        validate_data_command)
    perturbations = typer.Typer(help="Perturbation tools.", no_args_is_help=True)

    @perturbations.command("preview")
    def preview(data: str = typer.Option("phantom2d", "--data", "-d", help="Data spec as for `harness run`."),
                out: Path = typer.Option(Path("reports/preview"), "--out", "-o", help="Folder for the PNG grids."),
                families: Optional[str] = typer.Option(None, "--families", help="Comma-separated families (default all applicable)."),
                case_id: Optional[str] = typer.Option(None, "--case", help="Case id (default the first)."),
                seed: int = typer.Option(0, "--seed", min=0, help="Suite seed for the random draws (as `harness run --seed`).")) -> None:
        """Write one PNG grid per family (severity 0-5) for a case."""
        from harness.datasets import open_dataset
        from harness.perturbations.preview import preview as make_preview

        chosen = [f.strip() for f in families.split(",") if f.strip()] if families is not None else None
        if chosen == []:
            raise ConfigError(f"--families {families!r}: no family named; give names like 'gaussian_noise,blur'")
        paths = make_preview(open_dataset(data), out, families=chosen, case_id=case_id, seed=seed)
        out_console.print(f"wrote {len(paths)} PNG grid(s) to {out}")

    app.add_typer(perturbations, name="perturbations")


_register_optional_commands()


def _exception_types(name: str, *seeds: type) -> tuple[type, ...]:
    """Exception classes called ``name`` in typer's (possibly vendored) click and in click itself."""
    found = {cls for seed in seeds for cls in seed.__mro__ if cls.__name__ == name}
    try:
        import click

        found.add(getattr(click.exceptions, name))
    except (ImportError, AttributeError):
        pass
    return tuple(found)


_USAGE_ERRORS = _exception_types("UsageError", typer.BadParameter)
_EXITS = _exception_types("Exit", typer.Exit)
_ABORTS = _exception_types("Abort", typer.Abort)


def main(argv: list[str] | None = None) -> int:
    """Console entry point with the documented exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG["on"] = "--debug" in args or os.environ.get("HARNESS_DEBUG") == "1"
    command = typer.main.get_command(app)
    try:
        code = int(command.main(args=args, prog_name="harness", standalone_mode=False) or 0)
    except _EXITS as exc:
        code = int(getattr(exc, "exit_code", 0))
    except _USAGE_ERRORS as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `harness`: the help was the answer
            return 0
        console.print(f"[red]usage error:[/] {escape(exc.format_message())}", soft_wrap=True)
        if getattr(exc, "ctx", None) is not None:
            console.print(escape(exc.ctx.get_usage()))
        return 3
    except _ABORTS:
        console.print("[red]aborted[/]")
        return 2
    except ConfigError as exc:
        if _DEBUG["on"]:
            console.print_exception()
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 3
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 2
    except Exception as exc:  # the harness itself broke: one line unless --debug
        if _DEBUG["on"]:
            console.print_exception()
        console.print(f"[red]internal error:[/] {escape(f'{type(exc).__name__}: {exc}')} "
                      "(for the traceback rerun as `harness --debug ...`, or set HARNESS_DEBUG=1)")
        return 2
    if code == 130:  # typer's rendering of a Ctrl-C the run did not handle itself: exit 2, as documented
        console.print("[red]interrupted[/]")
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
