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
