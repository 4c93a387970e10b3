"""``ctr auction``: the multi-slot GSP auction simulator, scored by the live service, with the
retraining loop closed through the admin API (docs/auction.md); ``ctr auction-merge``: the reports of a run
split across machines (``--first-seed K --seeds N``) joined into one run's.

The merge is a command of its own, ``auction-merge``, not ``ctr auction merge``: ``auction`` stays one command
(its options, help and recorded command lines unchanged), where a group running the auction as its callback
would parse ``ctr auction --days 3 merge ...``, the run's options before the subcommand; two-word commands are
hyphenated in this app already (``docs-check``, ``sample-request``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.options import ProgressOption, explicit_only, shown_progress
from cli.reports import check_report_paths, run_record, write_report

# --quick's settings (seconds-scale, one reload); without it, AuctionConfig's defaults (clients/auction/run.py)
QUICK = {"days": 2, "requests_per_day": 300, "seeds": 1, "train_days": 1}


def auction(
    context: typer.Context,
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Auction days per pipeline (retrained after each but the last); 5, --quick 2."),
    ] = None,
    requests_per_day: Annotated[int | None, typer.Option(min=1, help="Auctions a day; 2000, --quick 300.")] = None,
    slots: Annotated[int, typer.Option(min=1, help="Ads shown per request.")] = 3,
    candidates: Annotated[int, typer.Option(help="Eligible candidates per request.")] = 10,
    retrieval: Annotated[
        str,
        typer.Option(
            help="Where the candidates come from: pool (the eligible pool), esam (the top K of --pool ads by a "
            "served ESAM model's /v1/similarity, trained on the history window) or first (the first K of that pool)."
        ),
    ] = "pool",
    pool: Annotated[
        int | None, typer.Option(help="With --retrieval esam or first: ads drawn per request to retrieve from; 100.")
    ] = None,
    retrain_retrieval: Annotated[
        bool,
        typer.Option(
            "--retrain-retrieval",
            help="With --retrieval esam: each pipeline retrains its own ESAM on its own days of logs after each day "
            "but the last and loads it into its own retrieval service (day 0: the history-trained one, for all).",
        ),
    ] = False,
    retrieval_window: Annotated[
        str,
        typer.Option(
            help="With --retrain-retrieval, the days each retraining's window holds: latest (the --train-days latest,"
            " the history's days dropped as the pipeline's own come) or history-kept (the history window's days "
            "always, then the pipeline's own --train-days latest)."
        ),
    ] = "latest",
    pipelines: Annotated[
        str, typer.Option(help="Comma-separated: naive, debiased, constant, random, oracle.")
    ] = "naive,debiased,oracle",
    seeds: Annotated[
        int | None, typer.Option(min=1, help="Seeds K..K+N-1 (world, advertisers, traffic); 3, --quick 1.")
    ] = None,
    first_seed: Annotated[
        int, typer.Option(min=0, help="K, the first seed: a run split across machines, each part its own seeds.")
    ] = 0,
    train_days: Annotated[
        int | None, typer.Option(min=1, help="Days of logs each retraining uses; 2, --quick 1.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Training batch size of the pipelines' models.")] = 128,
    reserve: Annotated[float, typer.Option(min=0.0, help="Reserve price per click.")] = 0.2,
    explore: Annotated[
        float,
        typer.Option(
            help="Exploration slice: the share of each day's requests (0 <= SHARE < 1) on which naive, debiased and "
            "constant show their eligible candidates in a uniformly random order, logged with their propensity."
        ),
    ] = 0.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Scoring requests in flight.")] = 16,
    out: Annotated[Path, typer.Option(help="JSON report to write (and a PNG beside it).")] = Path(
        "reports/auction.json"
    ),
    work_dir: Annotated[Path, typer.Option(help="Logs, repositories, checkpoints.")] = Path("artifacts/auction"),
    configs: Annotated[
        Path, typer.Option(help="The model repository whose config.toml files the pipelines' models start from.")
    ] = Path("models"),
    url: Annotated[
        str | None, typer.Option(help="A running service to score the one service pipeline with (none is started).")
    ] = None,
    repository: Annotated[
        Path | None, typer.Option(help="With --url: the running service's model repository, to retrain into.")
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(envvar="CTR_ADMIN_TOKEN", hide_input=True, help="With --url and --repository: its admin token."),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="2 days x 300 requests, 1 seed, 1 training day (tests); the flags above win.")
    ] = False,
    progress: ProgressOption = None,
) -> None:
    """Run the pipelines through the same days of auctions and write the report.

    Exit codes: 0 a clean run; 1 the report was written but is not the models' comparison (a pipeline stopped
    early, scoring calls failed: each counted as an auction without ads, or a day was scored by versions it did
    not load; the WARNING lines say which: the paired comparisons leave out the seed-days with failed calls);
    2 a setting or the service refused before the first day, nothing written; 130 (Ctrl-C) or 143 (SIGTERM)
    interrupted: the report of the days that ended written, marked "partial" (none before the first day ended).
    An error after a day ended (a trainer, a service or a retriever that failed) writes that partial report too,
    then ends as the error does (one line and exit 2 for a setting, a traceback for a bug)."""
    from clients.auction.explore import check_explore

    check_explore(explore, [p.strip() for p in pipelines.split(",")])  # before the run's imports (torch)
    from clients.auction.plot import plot_report
    from clients.auction.run import AuctionConfig, Interrupted, run_auction

    if url is None or repository is None:
        admin_token = explicit_only(context, "admin_token", admin_token)
    given = {"days": days, "requests_per_day": requests_per_day, "seeds": seeds, "train_days": train_days}
    settings = {**(QUICK if quick else {}), **{key: value for key, value in given.items() if value is not None}}
    given_batch = context.get_parameter_source("batch_size")
    if url is not None and repository is not None and given_batch is not None and given_batch.name == "COMMANDLINE":
        # the service's repository trains with its own configs: the option was ignored and recorded as if used
        raise ValueError(
            "--batch-size: with --url and --repository the service's own config.toml files train (their [training]"
            " batch_size); set it there"
        )
    _check_out(out)  # said before the auctions, not after them
    if retrieval != "pool" and pool is None:
        from clients.auction.retrieval import DEFAULT_POOL

        pool = DEFAULT_POOL
    config = AuctionConfig(
        slots=slots,
        candidates=candidates,
        retrieval=retrieval,
        pool=pool,
        retrain_retrieval=retrain_retrieval,
        retrieval_window=retrieval_window,
        pipelines=tuple(p.strip() for p in pipelines.split(",") if p.strip()),
        reserve=reserve,
        explore=explore,
        batch_size=batch_size,
        concurrency=concurrency,
        work_dir=work_dir,
        model_source=configs,
        progress=shown_progress(progress),
        url=url,
        repository=repository,
        admin_token=admin_token,
        first_seed=first_seed,
        **settings,
    )
    logging.getLogger("clients.auction").setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per scoring call otherwise
    try:
        report = run_auction(config)
    except Interrupted as interrupted:  # Ctrl-C, SIGTERM (SystemExit 143: cli/signals.py), an error: after a day
        # the days run so far were lost: hours of simulation, for a stop in the last one
        write_report(out, interrupted.report | run_record(context))
        plot_report(interrupted.report, out.with_suffix(".png"))
        _say_served(interrupted.report)
        typer.echo(_interrupted_line(interrupted.report, out), err=True)
        raise interrupted.stop from None
    except (KeyboardInterrupt, SystemExit):  # before the first day ended: nothing to report
        typer.echo(f"interrupted: no report written to {out} (no day had ended)", err=True)
        raise
    _write_and_say(report | run_record(context), out)


def auction_merge(
    context: typer.Context,
    parts: Annotated[
        list[Path],
        typer.Argument(help="The parts' JSON reports, each of `ctr auction --first-seed K --seeds N`."),
    ],
    out: Annotated[Path, typer.Option(help="JSON report to write (and a PNG beside it).")] = Path(
        "reports/auction.json"
    ),
    allow_partial: Annotated[
        bool, typer.Option(help="Take the seeds an interrupted part finished; its unfinished ones are left out.")
    ] = False,
) -> None:
    """Join the reports of an auction run split across machines into the report of one run over all their seeds.

    Each part's per-seed records are kept; the totals, their 95% intervals over seeds and the paired comparisons
    are computed again over every part's seeds, as one run computes them (docs/auction.md, "Split runs").
    Exit codes: 0 merged; 1 merged, but a pipeline stopped early or had failed calls or stale versions (as
    `ctr auction`); 2 a part cannot be merged (other settings or model configs, a seed in two parts, a partial
    report without --allow-partial, not an auction report): one line naming the file, nothing written."""
    from clients.auction.merge import merge_reports, read_part

    if out.resolve() in {part.resolve() for part in parts}:  # the part would be replaced by the merge
        raise ValueError(f"--out {out} is one of the parts: name another file for the merged report")
    _check_out(out)
    merged, notes = merge_reports([(path, read_part(path)) for path in parts], allow_partial)
    for line in notes:
        typer.echo(line, err=True)
    _write_and_say(merged | run_record(context), out)


def _interrupted_line(report: dict[str, Any], out: Path) -> str:
    """What an interrupted run wrote, and how its unfinished seeds are run again and joined to it."""
    partial = report["partial"]
    stopped = f"stopped by {partial['error']}" if "error" in partial else "interrupted"
    line = (
        f"{stopped}: wrote the partial report of the days that ended to {out} and {out.with_suffix('.png')}"
        " (partial.days_completed)"
    )
    from clients.auction.run import rerun_command

    unfinished = partial["seeds_unfinished"]  # the seed it stopped in and those after it
    if not unfinished:  # stopped after the last day ended
        return line
    return (
        f"{line}; seed(s) {', '.join(map(str, unfinished))} unfinished: {rerun_command(unfinished)} (and the same "
        f"other options) runs them again, and `ctr auction-merge --allow-partial {out} RERUN.json` joins the two "
        "reports"
    )


def _check_out(out: Path) -> None:
    if out.with_suffix(".png") == out:  # --out r.png: the plot was written over the report
        raise ValueError(f"--out {out}: the plot is written to its .png sibling, itself; name a .json report")
    check_report_paths(out)


def _write_and_say(report: dict[str, Any], out: Path) -> None:
    """Write the report and its PNG, print its table and what is wrong with it; exit 1 where a pipeline stopped
    early or a day's figures are not the models' (failed calls, stale versions)."""
    from clients.auction.plot import plot_report
    from clients.auction.report import scoring_warnings, stale_warnings, table

    write_report(out, report)
    plot_report(report, out.with_suffix(".png"))
    typer.echo(table(report))
    typer.echo(f"wrote {out} and {out.with_suffix('.png')}")
    _say_served(report)
    aborted = {name: p["aborted"] for name, p in report["pipelines"].items() if p["aborted"]}
    if aborted:
        typer.echo(f"aborted pipelines: {aborted}", err=True)
    warnings = scoring_warnings(report) + stale_warnings(report)
    for line in warnings:
        typer.echo(line, err=True)
    if aborted or warnings:
        raise typer.Exit(1)


def _say_served(report: dict[str, Any]) -> None:
    """After a run retrained into a running service (--url --repository): the versions it was left serving, per
    role, or that it did not say; the run's reloads moved them, and no line said so."""
    if "served_models_at_end" in report:
        typer.echo(_served_line(report))


def _served_line(report: dict[str, Any]) -> str:
    served, before = report["served_models_at_end"], report["served_models"]
    url = report["config"]["url"]
    if served is None:
        return f"the service at {url} did not list its models after the run: what it serves is unconfirmed"
    roles = ", ".join(
        f"{role} {m['name']} version {m['version']} (was {before.get(role, {}).get('version')})"
        for role, m in served.items()
    )
    return f"the service at {url} now serves: {roles}"
