"""``ctr experiment ...``: paper reproductions and method comparisons on the world simulator.

Each experiment is one command here; its logic lives in ``training/experiments/<name>.py``. Every
experiment writes a JSON report with stable keys and a PNG plot, and prints a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

experiment_app = typer.Typer(help="Paper reproductions and method comparisons.", no_args_is_help=True)


@experiment_app.command("esam")
def esam(
    out: Annotated[Path, typer.Option(help="JSON report to write.")] = Path("reports/esam.json"),
    plot: Annotated[Path | None, typer.Option(help="PNG picture (default: beside --out).")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Repetitions (default 3).")] = None,
    quick: Annotated[bool, typer.Option(help="A tiny world and few queries: seconds, for tests.")] = False,
) -> None:
    """ESAM ablation: baseline, +L_DA, +L_DA+L_DC^c, ESAM; Recall/NDCG on hot vs long-tail items."""
    import json

    from training.experiments.esam import ExperimentConfig, format_table, run_experiment

    config = ExperimentConfig.quick() if quick else ExperimentConfig()
    if seeds is not None:
        config.seeds = seeds
    report = run_experiment(config, plot or out.with_suffix(".png"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    typer.echo(format_table(report))
    typer.echo(f"wrote {out} and {report['plot']} in {report['seconds']} s")
