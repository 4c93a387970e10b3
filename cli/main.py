"""The ``ctr`` command line: simulate, train, export, evaluate, serve, and request samples.

``serve`` needs only a serving install (``pip install .[cpu]``); the commands that train, simulate
or draw from the world simulator (``sample-request`` too: the world's tables are pyarrow's) need the
``train`` extra, and say so in one line when it is missing (cli/errors.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.auction import auction, auction_merge
from cli.bench import bench_app
from cli.docs_check import docs_check
from cli.errors import UserErrorTyper, is_user_error
from cli.experiment import experiment_app
from cli.export_line import export_line
from cli.new import new
from cli.options import (
    ProgressOption,
    RepositoryOption,
    ServedRepositoryOption,
    WorkDirOption,
    given_options,
    refuse_unread,
    settings_with_options,
    shown_progress,
)
from cli.prepare import prepare
from cli.reports import (
    check_folder_writable,
    check_report_paths,
    check_writable,
    report_lines,
    run_record,
    write_report,
)
from cli.score import score
from cli.signals import sigterm_exits
from cli.spec import spec_app
from cli.torchrun import launch, note_process_error
from common.finite_json import finite
from common.plural import counted
from common.utc_logging import CurrentStderrHandler, stderr_handler
from common.version import DISTRIBUTION, VERSION

if TYPE_CHECKING:
    from training.fitting.checkpoint import Checkpoint  # torch: imported where a command needs it
    from training.fitting.distributed_train import StreamSettings

app = UserErrorTyper(
    help="Debiased CTR/CVR models: train offline, export to ONNX, serve over HTTP.", no_args_is_help=True
)
app.add_typer(experiment_app, name="experiment")
app.add_typer(bench_app, name="bench")
app.add_typer(spec_app, name="spec")
app.command()(new)
app.command("auction")(auction)
app.command("auction-merge")(auction_merge)
app.command()(prepare)
app.command("docs-check")(docs_check)
app.command()(score)


def print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"{DISTRIBUTION} {VERSION}")
        raise typer.Exit()


@app.callback()
def configure(
    context: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if context.invoked_subcommand != "serve":  # the service drains on SIGTERM itself (service/server.py)
        # every other command unwinds on it as on Ctrl-C, until it ends (cli/signals.py): the service `ctr
        # auction` started, the file `ctr score` was writing, were left behind by commands that did not ask for it
        context.with_resource(sigterm_exits())
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, handlers=[stderr_handler("%(asctime)s %(levelname)s %(name)s: %(message)s")])
    if any(isinstance(handler, CurrentStderrHandler) for handler in logging.getLogger().handlers):
        # basicConfig did nothing for a second command in one process (its handler is already there): its own
        # --verbose or not still holds
        logging.getLogger().setLevel(level)
    # A misspelt CTR_ variable is said by every command, as by `ctr serve`, which says it itself once its log's
    # format is set (service/server.py: a JSON log's reader cannot parse a text line): `CTR_CTR_MODL=ctr ctr
    # prepare` said "nothing to train" alone. The settings' import (~0.1 s) only where a CTR_ variable is set
    if context.invoked_subcommand != "serve" and any(name.upper().startswith("CTR_") for name in os.environ):
        from service.settings import warn_of_unknown_variables

        warn_of_unknown_variables(os.environ)


@app.command()
def simulate(
    context: typer.Context,
    out: Annotated[Path, typer.Option(help="Parquet file to write (a directory with --shards).")] = Path(
        "data/world.parquet"
    ),
    days: Annotated[int, typer.Option(min=1, help="Days of traffic to simulate (not with --shards).")] = 5,
    requests_per_day: Annotated[
        int, typer.Option(min=1, help="Requests a day, an impression per slot each (not with --shards).")
    ] = 40_000,
    policy: Annotated[str, typer.Option(help="feedback, popularity or uniform.")] = "feedback",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the simulated days.")] = 1,
    world_seed: Annotated[int, typer.Option(min=0, help="Seed of the world's users and ads.")] = 0,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Write this many shards (a day each) into OUT (with --rows-per-shard).")
    ] = None,
    rows_per_shard: Annotated[int | None, typer.Option(min=1, help="Impressions per shard (with --shards).")] = None,
    row_group_rows: Annotated[int, typer.Option(min=1, help="Rows per Parquet row group (with --shards).")] = 65_536,
) -> None:
    """Write impression logs from the built-in world simulator: one Parquet file, or with --shards a
    directory of shards with a manifest (training/world/shards.py)."""
    from training.world import World, WorldConfig, write_logs

    world = World(WorldConfig(seed=world_seed))
    if shards is not None or rows_per_shard is not None:
        if shards is None or rows_per_shard is None:
            raise typer.BadParameter("--shards and --rows-per-shard go together")
        refuse_unread(context, ["days", "requests_per_day"], "with --shards: a shard is a day of --rows-per-shard rows")
        check_folder_writable(out)
        from training.world.shards import write_shards

        manifest = write_shards(world, out, shards, rows_per_shard, policy, seed, row_group_rows)
        typer.echo(f"wrote {counted(manifest['rows'], 'impression')} in {counted(shards, 'shard')} to {out}")
        return
    refuse_unread(context, ["row_group_rows"], "without --shards (one Parquet file, written whole)")
    check_writable(out)
    if out.suffix.lower() not in (".parquet", ".pq"):  # logs.csv held Parquet's bytes, which readers then refused
        raise ValueError(f"--out {out}: the logs are written as Parquet; name the file .parquet")
    table = world.simulate(days=days, requests_per_day=requests_per_day, policy=policy, seed=seed)
    write_logs(table, out)
    typer.echo(f"wrote {counted(table.num_rows, 'impression')} to {out}")


@app.command()
def train(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="The repository model to train (models/NAME/config.toml).")],
    logs: Annotated[
        Path | None, typer.Option(help="Your impression logs (Parquet/CSV file, directory or 'DIR/*.parquet').")
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="Feature spec (TOML) for --logs.")] = None,
    repository: RepositoryOption = Path("models"),
    work_dir: WorkDirOption = Path("artifacts"),
    progress: ProgressOption = None,
    non_displayed: Annotated[
        Path | None, typer.Option(help="Retrieval models: the non-displayed candidates beside --logs.")
    ] = None,
    export_after: Annotated[bool, typer.Option("--export", help="Export the trained model afterwards.")] = False,
    distributed: Annotated[
        bool, typer.Option(help="Stream --logs shards; one of the processes torchrun starts (DDP).")
    ] = False,
    nproc: Annotated[
        int | None, typer.Option(min=1, help="Start this many --distributed processes with torchrun.")
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader workers per process (streaming).")] = 0,
    shuffle_buffer: Annotated[int, typer.Option(min=1, help="Rows in each shuffle buffer (streaming).")] = 1_048_576,
    statistics: Annotated[
        Path | None, typer.Option(help="statistics.json of an earlier streamed run, instead of a statistics pass.")
    ] = None,
) -> None:
    """Train a model; the checkpoint goes to WORK_DIR/NAME/checkpoint.pt for `ctr export`.

    With --distributed (under `torchrun`) or --nproc N, the --logs shards are streamed and every
    process trains a DistributedDataParallel replica; rank 0 writes the checkpoint (docs/scale.md)."""
    from common.repository import CONFIG_FILE, check_publishable
    from training.training_files import check_own_logs, checkpoint_path

    progress = shown_progress(progress)

    def finish(checkpoint) -> None:  # the one process's, or rank 0's
        # stdout is the metrics' JSON alone, for `ctr train NAME > metrics.json` or `| jq` (the lines after it
        # broke both); where the checkpoint went and what the export did are said on stderr, beside the log
        typer.echo(json.dumps(finite(checkpoint.metrics), indent=2, sort_keys=True, allow_nan=False))  # NaN: null
        typer.echo(f"checkpoint: {checkpoint_path(work_dir, name)}", err=True)
        if export_after:  # this run's checkpoint: the file may hold another's by now (a shared work dir)
            publish(name, checkpoint, checkpoint_path(work_dir, name), repository, err=True)

    if logs is None:  # the world simulator's logs: its own features and candidates
        refuse_unread(context, ["spec", "non_displayed"], "without --logs (training on the world simulator)")
    if nproc is not None or distributed:
        refuse_unread(context, ["non_displayed"], "by streamed training (--nproc, --distributed)")
    else:
        refuse_unread(context, ["workers", "shuffle_buffer", "statistics"], "without --nproc or --distributed")
    if export_after and (repository / name / CONFIG_FILE).is_file():  # without a config, the next line says so
        check_publishable(repository, name)  # a read-only repository: said now, not after the training
    kind = _check_config(repository, name)
    if logs is not None:  # a log that is not there, a spec missing or that does not read: before torch's import too
        check_own_logs(repository, name, kind, logs, spec, non_displayed, streamed=nproc is not None or distributed)
    if nproc is not None or distributed:
        if logs is None:
            flag = "--nproc" if nproc is not None else "--distributed"
            raise typer.BadParameter(f"{flag} streams --logs shards; write them with `ctr simulate --shards`")
        from training.fitting.distributed_train import StreamSettings

        stream = StreamSettings(workers, shuffle_buffer, statistics)
        where = {"logs": logs, "spec": spec, "repository": repository, "work_dir": work_dir, "progress": progress}
        if nproc is not None:
            _launch_processes(nproc, name, stream, export_after=export_after, **where)
        else:
            _train_as_rank(name, stream, finish=finish, **where)
        return
    from training.pipeline import train as train_model

    finish(
        train_model(
            name,
            root=repository,
            logs=logs,
            spec_path=spec,
            work_dir=work_dir,
            progress=progress,
            non_displayed=non_displayed,
        )
    )


def _check_config(repository: Path, name: str) -> str:
    """The model's kind; a config that is missing or malformed, names no model kind, or holds a setting the kind or
    the trainer does not take, said before torch's import (~2 s of CPU): ``ModelConfig.load`` imports none. A typo
    took 2-4 s to say."""
    from training.model_config import ModelConfig

    return ModelConfig.load(repository, name).kind


def _launch_processes(
    nproc: int,
    name: str,
    stream: StreamSettings,
    *,
    logs: Path,
    spec: Path | None,
    repository: Path,
    work_dir: Path,
    progress: bool,
    export_after: bool,
) -> None:
    """``ctr train --nproc N``: start N ``ctr train --distributed`` processes under torchrun with these options,
    and end as they ended (typer.Exit with their exit code, or 128 + the signal that stopped them)."""
    from training.fitting.distributed_train import check_before_launch

    check_before_launch(name, logs, spec, repository, nproc, stream.statistics)  # a mistake: one line, no processes

    options = {"--logs": logs, "--spec": spec, "--repository": repository, "--work-dir": work_dir,
               "--workers": stream.workers, "--shuffle-buffer": stream.buffer_rows,
               "--statistics": stream.statistics}  # fmt: skip
    flags = ["--distributed", "--progress" if progress else "--no-progress", *(["--export"] * export_after)]
    arguments = [name, *flags, *(f"{k}={v}" for k, v in options.items() if v is not None)]
    launched = launch(nproc, ["train", *arguments])
    processes = counted(nproc, "process", "processes")
    if launched.stopped_by is not None:  # a shell's convention: 128 + the signal (130 for Ctrl-C)
        said = signal.Signals(launched.stopped_by).name
        typer.echo(f"training on {processes} stopped by {said}, its processes with it", err=True)
        raise typer.Exit(128 + launched.stopped_by)
    if launched.mistakes:
        typer.echo("\n".join(f"error: {mistake}" for mistake in launched.mistakes), err=True)
        raise typer.Exit(2)
    if launched.code:
        typer.echo(f"training on {processes} failed (exit code {launched.code}); the error is above", err=True)
        raise typer.Exit(launched.code)


def _train_as_rank(
    name: str,
    stream: StreamSettings,
    *,
    logs: Path,
    spec: Path | None,
    repository: Path,
    work_dir: Path,
    progress: bool,
    finish: Callable[[Checkpoint], None],
) -> None:
    """``ctr train --distributed``: this process's share of the streamed training, as one of the processes
    torchrun started; rank 0 ``finish``es with the checkpoint (the others get none)."""
    from torch.distributed.elastic.multiprocessing.errors import record

    from training.fitting.distributed import end_torchrun_process
    from training.fitting.distributed_train import train_streaming

    # a process torchrun started ends on its SIGTERM at once, as by default: blocked inside a collective, it
    # could not run the Python handler the app's callback set until the collective returned
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        checkpoint = record(train_streaming)(
            name,
            logs=logs,
            spec_path=spec,
            root=repository,
            work_dir=work_dir,
            settings=stream,
            distributed=True,
            progress=progress,
        )
    except Exception as error:  # the traceback stays (torchrun's report); the launcher ends on the line
        if is_user_error(error):
            note_process_error(error)
        raise
    if checkpoint is not None:  # rank 0: torchrun's SIGTERM during its export removes the staging folder
        with sigterm_exits():
            finish(checkpoint)
    end_torchrun_process()


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="The trained model to export.")],
    repository: RepositoryOption = Path("models"),
    work_dir: Annotated[
        Path, typer.Option("--work-dir", help="Where `ctr train` saved the checkpoint (WORK_DIR/NAME/checkpoint.pt).")
    ] = Path("artifacts"),
) -> None:
    """Export the trained checkpoint to ONNX as the model's next version (parity-checked); a checkpoint
    that is no longer the model config.toml describes (another kind, its model or training section, or for
    the world's simulated data its world and data sections, or a retrieval model's queries and retrieval
    sections) is refused, naming what differs (one of an earlier release is checked on its model section
    alone, with a warning), and one the newest version already holds is not published again."""
    from training.training_files import checkpoint_path, existing_checkpoint

    path = existing_checkpoint(checkpoint_path(work_dir, name))  # before torch's import (~2 s)
    from training.fitting.checkpoint import Checkpoint

    publish(name, Checkpoint.load(path), path, repository)


def publish(name: str, checkpoint: Checkpoint, path: Path, repository: Path, *, err: bool = False) -> None:
    """Export ``checkpoint`` (read from, or saved at, ``path``) as the model ``name`` config.toml describes,
    and print the line saying whether this call published a version (cli/export_line.py): on stdout for `ctr
    export`, whose result it is; on stderr (``err``) for `ctr train --export`, whose stdout is its metrics."""
    from training.export import publish_checkpoint
    from training.model_config import ModelConfig

    checkpoint.check_against(ModelConfig.load(repository, name), path)
    exported = publish_checkpoint(checkpoint, repository)
    directory = repository / name / str(exported.version)
    typer.echo(export_line(name, exported.version, directory, exported.published), err=err)


@app.command()
def evaluate(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="The exported model to evaluate, or `serving` (with --url).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="JSON report to write (default: reports/evaluation_NAME.json, a report per model: one file every "
            "model shared was overwritten by the next).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[int | None, typer.Option(min=1, help="Version to evaluate (default: latest).")] = None,
    repository: RepositoryOption = Path("models"),
    url: Annotated[str | None, typer.Option(help="`serving`: the running service, http://host:port.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="`serving`: concurrent HTTP connections.")] = 4,
    logs: Annotated[
        Path | None,
        typer.Option(
            help="Your held-out log: evaluate on it (AUC/log loss CIs, "
            "calibration per position, reliability PNG beside --out)."
        ),
    ] = None,
    resamples: Annotated[
        int,
        typer.Option(
            min=0,
            help="`--logs`: bootstrap resamples behind each 95% interval (each one pass over the log's rows; "
            "0: the metrics without intervals).",
        ),
    ] = 200,  # training.evaluation.evaluate_logs.BOOTSTRAP_RESAMPLES (not imported: it loads pyarrow, onnxruntime)
) -> None:
    """Evaluate a model as its config's `evaluation` says: `world` scores a held-out world day (or your
    held-out --logs) with the exported model (AUCs and calibration); `position_debias` (the ctr model)
    trains its comparison methods itself and needs no export; `retrieval` (esam) reports relevance for hot
    and long-tail items.

    `ctr evaluate serving --url URL` instead sends the day to a running service's /v1/score, request
    by request, and compares its answers with the truth at slot 1 (a reliability PNG beside --out); the
    day is drawn from the world of the served model's config.toml in --repository."""
    out = out if out is not None else Path(f"reports/evaluation_{name}.json")
    check_report_paths(out, png=name == "serving" or logs is not None)  # before the work; a PNG where drawn
    if name == "serving":
        refuse_unread(
            context, ["logs", "version", "resamples"], "by `ctr evaluate serving` (the served versions, on the world)"
        )
        import httpx

        from clients.client import ServiceError
        from common.shown_url import shown_url
        from training.evaluation.serving_calibration import evaluate_serving, format_table, plot

        if url is None:
            raise typer.BadParameter("`ctr evaluate serving` needs --url http://host:port")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per scoring call otherwise
        try:
            report = {**run_record(context), **evaluate_serving(url, repository, workers=workers)}
        except (ServiceError, httpx.HTTPError) as error:  # a call refused or failed once the service was ready
            typer.echo(f"error: {shown_url(url)}: {error or type(error).__name__}", err=True)
            raise typer.Exit(1) from None
        write_report(out, report, sort_keys=True)
        plot(report, out.with_suffix(".png"))
        typer.echo(format_table(report))
        typer.echo(f"wrote {out} and {out.with_suffix('.png')}")
        return
    refuse_unread(context, ["url", "workers"], "without `serving` (`ctr evaluate serving --url URL`)")
    from common.repository import versions

    if version is not None and version not in versions(repository, name):  # said before any work
        raise FileNotFoundError(f"model {name!r} has no version {version}; exported: {versions(repository, name)}")
    if logs is not None:
        from training.evaluation.evaluate_logs import evaluate_on_logs, summary

        report = run_record(context) | evaluate_on_logs(
            repository, name, logs, version, png=out.with_suffix(".png"), resamples=resamples
        )
        write_report(out, report, sort_keys=True)
        typer.echo("\n".join([*summary(report), f"wrote {out} and {report.get('reliability_png', 'no PNG')}"]))
        return
    refuse_unread(context, ["resamples"], "without --logs (a world day's metrics carry no intervals)")
    from common.encoder import FeatureError

    _check_config(repository, name)
    from training.evaluation.world_heldout import evaluate as evaluate_model

    try:
        report = run_record(context) | evaluate_model(repository, name, version)
    except FeatureError as error:  # a model of the user's own features: the simulator lacks them
        raise ValueError(
            f"{error}: {name} was trained on features other than the world simulator's; "
            f"evaluate it on your held-out log with `ctr evaluate {name} --logs HELDOUT`"
        ) from None
    write_report(out, report, sort_keys=True)
    typer.echo("\n".join([*report_lines(report), f"wrote {out}"]))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: CTR_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: CTR_PORT or 8000).")] = None,
    repository: ServedRepositoryOption = None,
) -> None:
    """Serve the models over HTTP (settings from CTR_* environment variables).

    CTR_CTR_MODEL and CTR_CTCVR_MODEL name the scoring role models (esmm by default); none in both serves the
    retrieval model (CTR_RETRIEVAL_MODEL, esam by default) alone: /v1/similarity, ready once it is loaded,
    /v1/score answered 404. Every CTR_* setting's default, unit and range: docs/serving.md, "Settings"."""
    from service.server import serve as run_server

    given = {"host": host, "port": port, "model_repository": repository}
    run_server(settings_with_options(given), given_options(given))


@app.command("sample-request")
def sample_request(
    candidates: Annotated[
        int, typer.Option("--candidates", "-n", min=1, help="Candidates in the body (at most the world's n_ads).")
    ] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draw.")] = 0,
    model: Annotated[str, typer.Option(help="Model whose config's world section draws the request.")] = "esmm",
    repository: RepositoryOption = Path("models"),
) -> None:
    """Print a valid /v1/score body drawn from the world simulator (for curl, tests, load tests)."""
    from training.config_world import repository_world

    if not (repository / model / "config.toml").is_file():
        raise FileNotFoundError(
            f"no {repository / model / 'config.toml'}: run from the repository root or pass --repository PATH/models"
        )
    world = repository_world(repository, model)
    if candidates > world.config.n_ads:  # the world's own check said "n_candidates", an option no one typed
        raise typer.BadParameter(
            f"{candidates} is more than the {world.config.n_ads} ads of {model}'s world ([world] n_ads)",
            param_hint="'--candidates' / '-n'",
        )
    body = world.sample_request(n_candidates=candidates, seed=seed)
    refuse_other_features(body, repository, model)
    typer.echo(json.dumps(body))


def refuse_other_features(body: dict, repository: Path, model: str) -> None:
    """ValueError where ``model`` reads its own logs' features (the ``spec.toml`` `ctr new --spec` kept) and the
    world's body does not fit them: the body printed was one its service refuses with a 422."""
    from common.features import FeatureSpec
    from training.training_files import own_spec

    spec_path = own_spec(repository, model, None)
    if spec_path is None:
        return
    spec = FeatureSpec.from_toml(spec_path)
    drawn = {*body["context"], *(name for candidate in body["candidates"] for name in candidate)}
    unknown = sorted(drawn - set(spec.by_name))
    missing = sorted(f.name for f in spec.features if f.required and f.name not in drawn)
    if unknown or missing:
        said = [f"the world draws features it does not take {unknown}"] if unknown else []
        said += [f"it requires {missing}, which the world lacks"] if missing else []
        raise ValueError(
            f"{model} reads the features of {spec_path}, not the world simulator's, which sample-request draws: "
            f"{'; '.join(said)}; "
            "a body for it is a row of your logs, its context and candidates"
        )


if __name__ == "__main__":
    app()
