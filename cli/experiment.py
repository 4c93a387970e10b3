"""``ctr experiment ...``: paper reproductions and method comparisons on the world simulator.

Each experiment is one command here; its logic lives in ``training/experiments/<name>.py``. Every
experiment writes a JSON report with stable keys and prints a table; all but ``cvr-diagnosis`` (a table
of variants) also draw a PNG plot beside the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.help_text import HelpTyper
from cli.options import numbers
from cli.reports import check_report_paths, check_writable, run_record, write_report

experiment_app = HelpTyper(help="Paper reproductions and method comparisons.", no_args_is_help=True)


@experiment_app.command("cvr")
def cvr(
    context: typer.Context,
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
    requests_per_day: Annotated[
        int | None, typer.Option(min=1, help="Training traffic a day (default 20,000; --quick 2,000).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the logs (default 2; --quick 1).")] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            help="A method to run (repeatable; default all of cvr.METHODS: BASE, ESMM, 'ESMM debiased', ...; the "
            "controls of cvr.ABLATIONS, e.g. 'ESCM2-DR oracle propensity, floor 0.001', run only when named)."
        ),
    ] = None,
) -> None:
    """Entire-space CVR: ESMM vs BASE, AMAN, OVERSAMPLING, DIVISION, ESMM-NS, IPS-CVR, ESCM²-IPS/DR."""
    from dataclasses import replace

    from training.experiments.settings.cvr import CVRExperimentConfig, method_models

    config = CVRExperimentConfig.quick() if quick else CVRExperimentConfig()
    config = replace(config, heldout_policy=heldout_policy, seeds=seeds or config.seeds)
    config = replace(
        config, requests_per_day=requests_per_day or config.requests_per_day, epochs=epochs or config.epochs
    )
    if service_world:
        config = replace(config, world={})
    if method:  # the config names the unknown ones and the known
        config = replace(config, methods=list(method))
    check_report_paths(out)
    method_models(repository, config)  # a method's model config missing or malformed; all before torch's import
    from training.experiments.cvr import format_table, run_cvr_experiment
    from training.experiments.cvr_plot import plot

    report = run_record(context) | run_cvr_experiment(repository, config)
    write_report(out, report, sort_keys=True)
    plot(report, out.with_suffix(".png"))
    typer.echo(format_table(report))
    typer.echo(f"{report['seconds']:.0f}s; wrote {out} and {out.with_suffix('.png')}")


@experiment_app.command("cvr-diagnosis")
def cvr_diagnosis(
    context: typer.Context,
    out: Annotated[Path, typer.Option(help="JSON report to write.")] = Path("reports/cvr_diagnosis.json"),
    seed: Annotated[
        list[int] | None, typer.Option(help="Training seeds (repeatable; default 0; the logs stay the config's).")
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            help="Variants (repeatable; default all): served, untrained, before, 'cvr offset 0', 'oracle labels', "
            "'epochs 2', 'epochs 3', 'learning rate 0.003', interaction, 'interaction, epochs 2', ... "
            "(training/experiments/settings/cvr_diagnosis.py)."
        ),
    ] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Days of training logs (default: the config's).")] = None,
    requests_per_day: Annotated[
        int | None, typer.Option(min=1, help="Training traffic (default: the config's).")
    ] = None,
    heldout_requests: Annotated[int, typer.Option(min=1, help="Requests of the uniform held-out day.")] = 20_000,
    repository: Annotated[Path, typer.Option("--repository", "-r", help="Where the model configs are.")] = Path(
        "models"
    ),
) -> None:
    """Why the served pCVR over-predicts: untrained, offset, oracle-label and schedule variants of `esmm`."""
    from training.experiments.settings.cvr_diagnosis import VARIANTS, DiagnosisConfig
    from training.model_config import ModelConfig

    try:
        config = DiagnosisConfig(
            days=days,
            requests_per_day=requests_per_day,
            heldout_requests=heldout_requests,
            seeds=seed or [0],
            variants=variant or list(VARIANTS),
        )
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--variant") from error
    check_report_paths(out, png=False)
    ModelConfig.load(repository, config.model)  # missing or malformed; all before torch's import (~2 s)
    from training.experiments.cvr_diagnosis import format_table, run_cvr_diagnosis

    report = run_record(context) | run_cvr_diagnosis(repository, config)
    write_report(out, report, sort_keys=True)
    typer.echo(format_table(report))
    typer.echo(f"{report['seconds']:.0f}s; wrote {out}")


@experiment_app.command("esam")
def esam(
    context: typer.Context,
    out: Annotated[Path, typer.Option(help="JSON report to write.")] = Path("reports/esam.json"),
    plot: Annotated[Path | None, typer.Option(help="PNG picture (default: beside --out).")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Repetitions (default 3; 1 with --quick).")] = None,
    quick: Annotated[bool, typer.Option(help="A tiny world and few queries: seconds, for tests.")] = False,
    world: Annotated[
        str, typer.Option(help="Retrieval world: attributes (default) or ids (the id-dominated control).")
    ] = "attributes",
) -> None:
    """ESAM ablation: baseline, +L_DA, +L_DA+L_DC^c, ESAM; Recall/NDCG on hot vs long-tail items."""
    from training.config_world import retrieval_config

    check_report_paths(out, png=False)  # the picture's path is checked apart: --plot
    picture = picture_path(plot, out)
    retrieval_config({"world": world})  # an unknown --world; all before torch's import (~2 s)
    from training.experiments.esam import ExperimentConfig, format_table, run_experiment

    config = ExperimentConfig.quick() if quick else ExperimentConfig()
    config.retrieval = {**config.retrieval, "world": world}
    if seeds is not None:
        config.seeds = seeds
    report = run_record(context) | run_experiment(config, picture)
    write_report(out, report, sort_keys=True)
    typer.echo(format_table(report))
    typer.echo(f"wrote {out} and {picture} in {report['seconds']} s")


def picture_path(plot: Path | None, out: Path) -> Path:
    """Where ``--plot`` has the picture written: beside ``out`` without it, and ``.png`` added to a name
    without a suffix, as matplotlib adds it, so the path said and recorded is the file written (``--plot
    t/pic`` said ``t/pic`` and wrote ``t/pic.png``). A folder is refused before the work: matplotlib wrote
    ``t.png`` beside it."""
    if plot is None:
        return out.with_suffix(".png")
    check_writable(plot, "--plot")
    return plot if plot.suffix else plot.with_name(plot.name + ".png")


# its short help set: click ends the listed first sentence at the first word ending in "." ("Moore et al.")
@experiment_app.command(
    "moore2018", short_help="Moore et al. 2018 section 5: the synthetic feedback loop and the adversarial network."
)
def moore2018(
    context: typer.Context,
    out: Annotated[Path, typer.Option(help="JSON report; the PNG goes beside it.")] = Path("reports/moore2018.json"),
    r: Annotated[
        float, typer.Option("--r", min=0.0, max=1.0, help="User-level bias: P(flip a position-2 click).")
    ] = 0.0,
    initialisations: Annotated[
        int | None, typer.Option(min=1, help="Initialisations per model (default 10; 2 with --quick).")
    ] = None,
    n_features: Annotated[int, typer.Option(min=1, help="Features of x ~ N(Y, 3).")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the (first) simulated feedback loop.")] = 0,
    loop_seeds: Annotated[int, typer.Option(min=1, help="Feedback loops: seeds --seed, --seed + 1, ...")] = 1,
    adversary_loss: Annotated[
        str, typer.Option(help="Loss_N's penalty: covariance (the paper's Cov^2) or correlation (Corr^2).")
    ] = "covariance",
    lambdas: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated lambdas (default the paper's 0, 0.9, ..., 0.99999; 0, 0.99, 0.9999 with --quick)."
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Main and Bias-only epochs each (default 100; 5 with --quick).")
    ] = None,
    quick: Annotated[bool, typer.Option(help="A tenth of the paper's sizes and few epochs (for tests).")] = False,
) -> None:
    """Moore et al. 2018 section 5: the synthetic feedback loop and the adversarial network over lambda."""
    import dataclasses

    from training.experiments.feedback_loop import FeedbackLoopConfig
    from training.experiments.settings.moore2018 import Moore2018Config, quick_config
    from training.models.settings.adversarial_ctr import AdversarialCTRConfig

    lambdas_given = None if lambdas is None else numbers(lambdas, float, "--lambdas")

    if quick:
        config = quick_config(r=r, seed=seed)
        config.loop = dataclasses.replace(config.loop, n_features=n_features)
    else:
        config = Moore2018Config(loop=FeedbackLoopConfig(n_features=n_features, r=r, seed=seed))
    if initialisations is not None:
        config.initialisations = initialisations
    if lambdas_given is not None:
        config.lambdas = lambdas_given
    if epochs is not None:
        config.epochs = config.bias_epochs = epochs
    try:
        config = dataclasses.replace(config, loop_seeds=loop_seeds, adversary_loss=adversary_loss)
        for lam in config.lambdas:
            AdversarialCTRConfig(lam=lam)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    check_report_paths(out)  # the options and the paths, all before torch's import (~2 s)
    from training.experiments.moore2018 import run
    from training.experiments.moore2018_report import plot, table

    _timed_report(context, lambda: run(config), out, plot, table)


@experiment_app.command("moore2018-checks")
def moore2018_checks(
    context: typer.Context,
    out: Annotated[Path, typer.Option(help="JSON report; the PNG goes beside it.")] = Path(
        "reports/moore2018_checks.json"
    ),
    loop_seeds: Annotated[int, typer.Option(min=1, help="Feedback loops checked for collapse (seeds 0, 1, ...).")] = 10,
    initialisations: Annotated[int, typer.Option(min=1, help="Initialisations per learning-rate comparison.")] = 2,
    quick: Annotated[bool, typer.Option(help="A tenth of the paper's sizes and few epochs (for tests).")] = False,
) -> None:
    """Checks of the moore2018 explanation: does the loop collapse onto one feature, is lambda a learning rate?"""
    import dataclasses

    from training.experiments.settings.moore2018 import Moore2018Config, quick_config

    config = dataclasses.replace(quick_config() if quick else Moore2018Config(), loop_seeds=loop_seeds)
    check_report_paths(out)  # before torch's import (~2 s)
    from training.experiments.moore2018_checks import checks_table, plot_checks, run_checks

    _timed_report(context, lambda: run_checks(config, initialisations), out, plot_checks, checks_table)


def _timed_report(
    context: typer.Context,
    make: Callable[[], dict[str, Any]],
    out: Path,
    plot: Callable[[dict[str, Any], Path], None],
    table: Callable[[dict[str, Any]], list[str]],
) -> None:
    """Runs ``make``, writes its report (with its wall time and ``run_record``) as JSON and its PNG beside
    (``out`` and the PNG's path checked by the caller, before torch's import), prints its table."""
    started = time.perf_counter()
    report = run_record(context) | make()
    report["seconds"] = time.perf_counter() - started
    write_report(out, report)
    plot(report, out.with_suffix(".png"))
    for line in table(report):
        typer.echo(line)
    typer.echo(f"{report['seconds']:.0f} s; wrote {out} and {out.with_suffix('.png')}")
