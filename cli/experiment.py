"""``ctr experiment ...``: paper reproductions and method comparisons on the world simulator.

Each experiment is one command here; its logic lives in ``training/experiments/<name>.py``. Every
experiment writes a JSON report with stable keys and a PNG plot, and prints a table.
"""

from __future__ import annotations

import time
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
    requests_per_day: Annotated[int | None, typer.Option(min=1, help="Training traffic (default 20,000).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the logs (default 2).")] = None,
) -> None:
    """Entire-space CVR: ESMM vs BASE, AMAN, OVERSAMPLING, DIVISION, ESMM-NS, IPS-CVR, ESCM²-IPS/DR."""
    import json
    from dataclasses import replace

    from training.experiments.cvr import CVRExperimentConfig, format_table, plot, run_cvr_experiment

    config = CVRExperimentConfig.quick() if quick else CVRExperimentConfig()
    config = replace(config, heldout_policy=heldout_policy, seeds=seeds or config.seeds)
    config = replace(
        config, requests_per_day=requests_per_day or config.requests_per_day, epochs=epochs or config.epochs
    )
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


@experiment_app.command("moore2018")
def moore2018(
    out: Annotated[Path, typer.Option(help="JSON report; the PNG goes beside it.")] = Path("reports/moore2018.json"),
    r: Annotated[
        float, typer.Option("--r", min=0.0, max=1.0, help="User-level bias: P(flip a position-2 click).")
    ] = 0.0,
    initialisations: Annotated[int | None, typer.Option(min=1, help="Initialisations per model (default 10).")] = None,
    n_features: Annotated[int, typer.Option(min=1, help="Features of x ~ N(Y, 3).")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the simulated feedback loop.")] = 0,
    quick: Annotated[bool, typer.Option(help="A tenth of the paper's sizes and few epochs (for tests).")] = False,
) -> None:
    """Moore et al. 2018 section 5: the synthetic feedback loop and the adversarial network over lambda."""
    import dataclasses
    import json

    from training.experiments.feedback_loop import FeedbackLoopConfig
    from training.experiments.moore2018 import Moore2018Config, plot, quick_config, run, table

    if quick:
        config = quick_config(r=r, seed=seed)
        config.loop = dataclasses.replace(config.loop, n_features=n_features)
    else:
        config = Moore2018Config(loop=FeedbackLoopConfig(n_features=n_features, r=r, seed=seed))
    if initialisations is not None:
        config.initialisations = initialisations
    started = time.perf_counter()
    report = run(config)
    report["seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out.with_suffix(".png"))
    for line in table(report):
        typer.echo(line)
    typer.echo(f"{report['seconds']:.0f} s; wrote {out} and {out.with_suffix('.png')}")
