"""``ctr prepare``: train and export every served model that has no exported version (what ``make run`` does).

The models are trained in parallel, one ``ctr train NAME --export`` process each, every process with
one torch thread: on the 2-core machine the default models (esam and esmm, which fills both scoring
roles; common/roles.py) then take about as long as the slowest alone (ESMM), where one after the other
with torch's default two threads they took several times longer (two threads spin-waiting on small
matrices burn about three times the CPU of one; docs/results.md, "Timings"). The model expected to
take longest keeps a core of its own (the others run at a lower priority). Each process appends its log
to ``WORK_DIR/NAME/prepare.log`` (appends: two ``ctr prepare`` runs sharing a work folder truncated each
other's log, and both lose nothing now; each reads only what was written after it started, though two at
once interleave their lines there); this process imports no torch and prints one progress line per phase:
a line when a model starts (with the time it took on the 2-core machine, when known), one when it is
trained and one when it is exported (or found already held by the newest version, not published again).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from cli.export_line import read_export_line
from cli.options import ServedRepositoryOption, WorkDirOption, settings_with_options
from cli.signals import release_stop_signals, stop_signals_held
from clients.service_process import stop

# Seconds each model took to train and export with `ctr prepare` on the 2-core machine, its processes sharing
# the two cores (docs/results.md "Timings", the `make run` row): the "~N s" of the progress lines. esam and
# esmm are the default's two processes; ctr is trained only where CTR_CTR_MODEL=ctr names it (README), its
# figure from the three-process runs of before esmm filled both roles.
EXPECTED_S = {"ctr": 30, "esam": 20, "esmm": 65}
THREADS_PER_MODEL = 1
# The others run at a lower priority than the model expected to take longest, so that it keeps a core
# of its own while they share the other: it is the one the whole command waits for.
BACKGROUND_NICENESS = 5
LOG_TAIL_LINES = 20
CHECKPOINT_LINE = "checkpoint: "  # what `ctr train` says on stderr once the checkpoint is saved (before --export)


@dataclass
class Job:
    name: str
    process: subprocess.Popen
    log: Path
    started: float
    offset: int  # the log's size when the process started: what it writes comes after
    trained: bool = False  # its "trained in" line was printed

    def output(self) -> str:
        """What the process has written to its log so far (not an earlier or a concurrent run's lines before)."""
        with open(self.log, "rb") as log:
            log.seek(self.offset)
            return log.read().decode("utf-8", errors="replace")


def served_repository(repository: Path | None) -> tuple[Path, str]:
    """The repository ``ctr serve`` would serve: ``--repository`` where given, else ``CTR_MODEL_REPOSITORY``,
    else ``models`` (it checked and trained ``models`` while ``make run`` served the variable's, empty); and
    which of them named it."""
    named_by = "--repository" if repository is not None else "CTR_MODEL_REPOSITORY"
    if repository is None and "CTR_MODEL_REPOSITORY" not in os.environ:
        named_by = "the default"
    return settings_with_options({"model_repository": repository}).model_repository, named_by


def missing_models(repository: Path, named_by: str = "--repository") -> list[str]:
    """The served models (each role's and, when it has a config, the retrieval model) with no whole exported
    version (``newest_whole_version``: one left empty by a power loss counted, and the service refused it for good).

    A role's model without a version and without a config is refused (FileNotFoundError, before any
    process starts): the service cannot start without it, and its training process only failed with "no
    config" after the progress line promised it, leaving a log in the work folder. The retrieval model is
    optional (``/v1/similarity``): without a config it is not trained, as before."""
    from common.repository import newest_whole_version

    settings = settings_with_options({"model_repository": repository})  # a mistake names --repository
    roles = set(settings.roles.values())
    retrieval = {settings.retrieval_model} if _config(repository, settings.retrieval_model).is_file() else set()
    missing = sorted(m for m in roles | retrieval if newest_whole_version(repository, m) is None)  # each read once
    unconfigured = [m for m in missing if m in roles and not _config(repository, m).is_file()]
    if unconfigured:
        raise FileNotFoundError(
            f"no config for the served model{'s' if len(unconfigured) > 1 else ''} {', '.join(unconfigured)} "
            f"({_config(repository, unconfigured[0])} is absent; the repository is {named_by}'s) and no whole "
            "exported version to serve: pass --repository with the model repository that holds them, or make one with "
            "`ctr new NAME --kind KIND`"
        )
    return missing


def _none_whole(repository: Path, name: str) -> str:
    """That no version of ``name`` is whole, and why its newest is not (``not_whole``: a file of another sha256,
    one missing or not a plain file, such as a FIFO). Its files are read again: a moment, before a minute of
    training beside it (a newer version, which the service serves; it refuses the one not whole)."""
    from common.repository import not_whole, version_dir, versions

    newest = version_dir(repository, name, versions(repository, name)[-1])
    return f"no version of {name} is whole; its newest, {newest}: {not_whole(newest) or 'whole by now'}"


def _config(repository: Path, name: str) -> Path:
    return repository / name / "config.toml"


def _log_path(work_dir: Path, name: str) -> Path:
    return work_dir / name / "prepare.log"


def _start(name: str, repository: Path, work_dir: Path, niceness: int) -> Job:
    log = _log_path(work_dir, name)
    threads = str(THREADS_PER_MODEL)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    command = [sys.executable, "-m", "cli.main", "train", name, "--no-progress", "--export",
               "--repository", str(repository), "--work-dir", str(work_dir)]  # fmt: skip
    with open(log, "ab") as output:  # "wb" truncated the log of another `ctr prepare` sharing the work folder
        offset = output.tell()
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, preexec_fn=lambda: _child_setup(niceness)
        )
    return Job(name, process, log, time.monotonic(), offset)


def _child_setup(niceness: int) -> None:
    os.nice(niceness)
    release_stop_signals()  # started while train_in_parallel held them


def _stop(jobs: list[Job]) -> None:
    """SIGTERM to every job still running, then for each a wait of 10 s and a kill."""
    stop(*(job.process for job in jobs), signals=((signal.SIGTERM, 10.0), (signal.SIGKILL, None)))


def _exported(job: Job) -> str:
    """What the job's export did, as its progress line says it: ``exported as version N``, or that the newest
    version already held the export (cli/export_line.py; it read "exported as version ?" of that case)."""
    outcome = read_export_line(job.output().splitlines())
    if outcome is None:
        return "exported as version ?"
    version, published = outcome
    return f"exported as version {version}" if published else f"version {version} already holds this export"


def train_in_parallel(names: list[str], repository: Path, work_dir: Path, step: str) -> None:
    """Train and export ``names`` in parallel processes, printing a line as each starts and ends; on a
    failure the other processes are stopped and the failed one's log tail is printed (exit 1)."""
    width = max(len(n) for n in names)
    longest = max(names, key=lambda n: EXPECTED_S.get(n, 0))
    for name in names:  # an unwritable work folder is said before any process starts, not after the first
        _log_path(work_dir, name).parent.mkdir(parents=True, exist_ok=True)
    running: list[Job] = []
    try:  # a process started before a later one failed to start is stopped too
        for name in names:
            expected = f" (~{EXPECTED_S[name]} s)" if name in EXPECTED_S else ""
            log = _log_path(work_dir, name)
            typer.echo(f"{step} training + exporting {name:<{width}}{expected} ... log: {log}")
            with stop_signals_held():  # a stop between the process's start and its record here orphaned it
                running.append(_start(name, repository, work_dir, 0 if name == longest else BACKGROUND_NICENESS))
        while running:
            time.sleep(0.2)
            for job in running:
                if not job.trained and CHECKPOINT_LINE in job.output():
                    job.trained = True
                    typer.echo(
                        f"{step} {job.name:<{width}} trained in {time.monotonic() - job.started:.0f} s; "
                        "exporting to ONNX (parity-checked) ..."
                    )
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                seconds = time.monotonic() - job.started
                if job.process.returncode != 0:
                    tail = job.output().splitlines()[-LOG_TAIL_LINES:]
                    if any(line.strip() for line in tail):
                        typer.echo("\n".join(tail), err=True)
                        where = f"its log: {job.log}"
                    else:  # the process could not write its error either (a full disk): "its log" was an empty file
                        where = f"its log {job.log} holds nothing of this run (could it be written? is the disk full?)"
                    typer.echo(f"{step} {job.name} failed after {seconds:.0f} s (exit code "
                               f"{job.process.returncode}); {where}", err=True)  # fmt: skip
                    raise typer.Exit(1)
                typer.echo(f"{step} {job.name:<{width}} done in {seconds:.0f} s: {_exported(job)}")
    finally:
        _stop(running)


def prepare(
    repository: ServedRepositoryOption = None,
    work_dir: WorkDirOption = Path("artifacts"),
    step: Annotated[str, typer.Option(help="Progress prefix: this phase's number among the caller's.")] = "[1/1]",
) -> None:
    """Train and export each served model (the roles' and the retrieval model) that has a config but
    no exported version yet, in parallel processes (what `make run` does). A role's model with neither,
    and a repository that cannot take a new version (read-only, not the user's to write), are refused
    before any training starts; the retrieval model without a config is left out."""
    from common.repository import check_publishable, versions

    started = time.monotonic()
    repository, named_by = served_repository(repository)
    missing = missing_models(repository, named_by)
    if not missing:
        typer.echo(f"{step} every served model has an exported version in {repository}: nothing to train")
        return
    for name in missing:  # a read-only repository was found by each process at its export, a minute in
        check_publishable(repository, name)
    if importlib.util.find_spec("torch") is None:  # each training process failed with it, after its line
        raise ModuleNotFoundError("No module named 'torch'", name="torch")
    broken = [name for name in missing if versions(repository, name)]  # there, but refused by the service
    said = f" ({'; '.join(_none_whole(repository, name) for name in broken)})" if broken else ""
    typer.echo(f"{step} no exported version of {', '.join(missing)}{said}: training on the built-in world simulator, "
               f"one process per model, in parallel, {THREADS_PER_MODEL} torch thread each")  # fmt: skip
    train_in_parallel(missing, repository, work_dir, step)  # a SIGTERM stops them as Ctrl-C does (cli/main.py)
    typer.echo(f"{step} done in {time.monotonic() - started:.0f} s")
