"""``ctr experiment ...``: paper reproductions and method comparisons on the world simulator.

Each experiment is one command here; its logic lives in ``training/experiments/<name>.py``. Every
experiment writes a JSON report with stable keys and a PNG plot, and prints a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

experiment_app = typer.Typer(help="Paper reproductions and method comparisons.", no_args_is_help=True)


@experiment_app.command("cvr")
def cvr(
    out: Annotated[Path, typer.Option(help="JSON report to write; the PNG plot goes beside it.")] = Path(
        "reports/cvr.json"
    ),
    seeds: Annotated[int | None, typer.Option(min=1, help="Repetitions (default 5; 2 with --quick).")] = None,
    heldout_policy: Annotated[
        str, typer.Option(help="feedback: the loop's next day (default); uniform: a randomly displayed day.")
    ] = "feedback",
    service_world: Annotated[
        bool, typer.Option(help="The service's default world (20,000 users, 5,000 ads) instead of the small one.")
    ] = False,
    quick: Annotated[bool, typer.Option(help="A small world and tiny towers: a minute-scale run for tests.")] = False,
    repository: Annotated[Path, typer.Option("--repository", "-r", help="Where the methods' configs are.")] = Path(
        "models"
    ),
) -> None:
    """Entire-space CVR: ESMM vs BASE, AMAN, OVERSAMPLING, DIVISION, ESMM-NS, IPS-CVR, ESCM²-IPS/DR."""
    import json
    from dataclasses import replace

    from training.experiments.cvr import CVRExperimentConfig, format_table, plot, run_cvr_experiment

    config = CVRExperimentConfig.quick() if quick else CVRExperimentConfig()
    config = replace(config, heldout_policy=heldout_policy, seeds=seeds or config.seeds)
    if service_world:
        config = replace(config, world={})
    report = run_cvr_experiment(repository, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    plot(report, out.with_suffix(".png"))
    typer.echo(format_table(report))
    typer.echo(f"{report['seconds']:.0f}s; wrote {out} and {out.with_suffix('.png')}")


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
