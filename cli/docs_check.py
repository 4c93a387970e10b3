"""``ctr docs-check``: the documentation's curl examples run against a live service, answers compared.

An example is a ``curl`` command in a ```sh / ```bash block of a Markdown file together with the
answer the page shows for it: ``# {...}`` comment lines right below the command, or a ```json block
right after the sh block (the answer of its last curl). The commands of the block before the curl
(``ctr sample-request ... > body.json``, say) run first, in a scratch directory where ``models``
and ``.venv`` point at the served repository and this environment, with ``localhost:8000`` rewritten to
the service under test. A curl without a shown answer (a timing loop, say) is not an example.

The answers are compared shape for shape (the same keys, list lengths and JSON types); with
``exact``, strings must be equal and numbers equal to a relative 1e-6 as well (the default models
train deterministically, so the page can show their values). ``--update`` writes the answers the
service gave back into the pages instead, and records which models gave them (``MODELS_RECORD``: each
model's newest version and a digest of its files).

Deterministic on one machine is not the same everywhere: the default esmm trained on an AMD EPYC VM
differs from the one trained where the pages were last written (scores 1-10 % apart after two epochs
of Adam), while two trainings on that VM are equal bit for bit. The cause was not isolated: the CPU and
its floating-point kernels differ, and so may any package but torch (the only one pinned). So values
are compared only when the served models are the recorded ones; otherwise
the check says which differ and compares the answers' shapes.

What keeps it from running is said once, in one ``error:`` line, before any example runs: a page named that
holds no example, nothing answering at ``--url`` (each example failed on curl's exit code 7), a
``--repository`` that does not exist or holds no version of a role's model (the service was waited on for
90 s), a service that does not get ready (the reason its log gives). A SIGTERM ends it as Ctrl-C does: the
service it started is stopped and its folders removed (exit code 143; cli/signals.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from cli.reports import write_whole
from common.plural import counted

FENCE = re.compile(r"^```(\w*)\s*$")
# the service as the examples call it, its scheme written or not
DOCUMENTED_ADDRESS = re.compile(r"(?:\bhttp://)?\b(?:localhost|127\.0\.0\.1):8000\b")
ANSWER_WIDTH = 100  # characters per line of a written-back answer
RELATIVE_TOLERANCE = 1e-6
COMMAND_TIMEOUT_S = 60
MODELS_RECORD = Path("docs/examples-models.json")  # the models whose answers the pages show


@dataclass
class Example:
    path: Path
    line: int  # 1-based line of the curl command
    setup: list[str]  # the block's other commands before the curl (their output is not the answer)
    command: str
    expected: Any
    answer_lines: tuple[int, int]  # 0-based [start, end) of the answer's lines in the file
    style: str  # "comment" (# lines below the command) or "json" (a ```json block after the sh block)


def _blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """(language, first content line, end line) of each fenced block (0-based, end exclusive)."""
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            blocks.append((match.group(1), i + 1, end))
            i = end + 1
        else:
            i += 1
    return blocks


def page_lines(path: Path) -> list[str]:
    """A Markdown page's lines; ValueError naming it when it is not UTF-8 text (a binary file passed as a
    page said only which byte could not be decoded)."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}): is it a Markdown page?"
        ) from None


def extract(path: Path) -> list[Example]:
    """The examples of one Markdown file (see the module docstring)."""
    lines = page_lines(path)
    blocks = _blocks(lines)
    examples: list[Example] = []
    for index, (language, start, end) in enumerate(blocks):
        if language not in ("sh", "bash"):
            continue
        setup: list[str] = []
        pending: tuple[int, str] | None = None  # the last curl without an answer yet
        i = start
        while i < end:
            first, command = i, lines[i].rstrip()
            while command.endswith("\\") and i + 1 < end:
                i += 1
                command = command[:-1].rstrip() + " " + lines[i].strip()
            i += 1
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            command = command.split("  #")[0].rstrip()  # a trailing comment explains, it does not run
            answer_start = i
            while i < end and lines[i].lstrip().startswith("# "):
                i += 1
            if command.lstrip().startswith("curl "):
                if i > answer_start:
                    text = " ".join(line.lstrip()[2:].strip() for line in lines[answer_start:i])
                    examples.append(Example(path, first + 1, list(setup), command, json.loads(text),
                                            (answer_start, i), "comment"))  # fmt: skip
                    pending = None
                else:
                    pending = (first, command)
            else:
                setup.append(command)
        if pending is not None and index + 1 < len(blocks):
            language_after, answer_start, answer_end = blocks[index + 1]
            between = lines[end + 1 : answer_start - 1]
            if language_after == "json" and not any(line.strip() for line in between):
                text = "\n".join(lines[answer_start:answer_end])
                examples.append(Example(path, pending[0] + 1, list(setup), pending[1], json.loads(text),
                                        (answer_start, answer_end), "json"))  # fmt: skip
    return examples


def differences(
    expected: Any, actual: Any, exact: bool, where: str = "$", tolerance: float = RELATIVE_TOLERANCE
) -> list[str]:
    """Where ``actual`` departs from ``expected``: shapes always, values too when ``exact`` (numbers within a
    relative ``tolerance``; 0: any change, which is what --update must see to write the last digits)."""
    kinds = (type(expected) in (int, float), type(actual) in (int, float))
    if type(expected) is not type(actual) and kinds != (True, True):
        return [f"{where}: expected {type(expected).__name__} {expected!r}, got {type(actual).__name__} {actual!r}"]
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            return [f"{where}: expected keys {sorted(expected)}, got {sorted(actual)}"]
        return [d for key in expected
                for d in differences(expected[key], actual[key], exact, f"{where}.{key}", tolerance)]  # fmt: skip
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{where}: expected {counted(len(expected), 'item')}, got {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in differences(e, a, exact, f"{where}[{i}]", tolerance)]  # fmt: skip
    if not exact or expected == actual:
        return []
    if kinds == (True, True) and tolerance and math.isclose(expected, actual, rel_tol=tolerance, abs_tol=1e-12):
        return []
    return [f"{where}: expected {expected!r}, got {actual!r}"]


def fingerprints(repository: Path) -> dict[str, dict[str, Any]]:
    """Each model of ``repository`` with a published version: its newest version and a digest of that
    version's files (``model.json`` aside: it records when it was written)."""
    from common.repository import MANIFEST_FILE, model_names, sha256_file, version_dir, versions

    found: dict[str, dict[str, Any]] = {}
    for name in model_names(repository):  # lost+found beside the models raised "model name ... must match"
        published = versions(repository, name)
        if not published:
            continue
        files = sorted(p for p in version_dir(repository, name, published[-1]).iterdir() if p.is_file())
        lines = "".join(f"{p.name} {sha256_file(p)}\n" for p in files if p.name != MANIFEST_FILE)
        found[name] = {"version": published[-1], "sha256": hashlib.sha256(lines.encode()).hexdigest()}
    return found


def unlike_recorded(record: Path, repository: Path) -> list[str]:
    """The recorded models that ``repository`` serves otherwise (another version, other weights, none);
    nothing when there is no record."""
    if not record.is_file():
        return []
    try:
        recorded: dict[str, Any] = json.loads(record.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{record} is not the JSON record of the pages' models: {error}") from None
    served_now = fingerprints(repository)
    return [name for name, recorded_print in recorded.items() if served_now.get(name) != recorded_print]


def run(example: Example, url: str, repository: Path) -> Any:
    """The example's answer from the service at ``url``: its block's setup and then its curl, in a scratch
    directory where ``models`` is ``repository`` and ``.venv`` this environment."""
    with tempfile.TemporaryDirectory(prefix="docs-check-") as scratch:
        os.symlink(repository.resolve(), Path(scratch) / "models")
        os.symlink(Path(sys.prefix), Path(scratch) / ".venv")
        script = "\n".join(["set -e", "{", *example.setup, "true; } > /dev/null", example.command])
        result = subprocess.run(["bash", "-c", addressed(script, url)], cwd=scratch,
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)  # fmt: skip
    # no location here: check() puts the example's in front of every problem (it was said twice)
    if result.returncode != 0:
        raise RuntimeError(f"exit code {result.returncode}: {result.stderr.strip()}")
    if not result.stdout.strip():
        raise RuntimeError(f"no answer ({result.stderr.strip()})")
    return json.loads(result.stdout)


def addressed(script: str, url: str) -> str:
    """``script`` calling the service at ``url`` where the examples call ``localhost:8000``: its scheme (http
    without one), host and port, and the path it is served under without its trailing slash, since the
    examples' paths start with one. ``http://[::1]:18210/`` made ``[::1]:18210//v1/similarity`` (a 404 for
    every example), and an ``https://`` URL was left whole behind a bare address's ``http://``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return DOCUMENTED_ADDRESS.sub(lambda _: base, script)


def wrapped(answer: Any, width: int = ANSWER_WIDTH) -> list[str]:
    """Compact JSON cut after "}," / "]," so that each line stays within ``width`` where it can."""
    pieces = re.split(r"(?<=[}\]],)", json.dumps(answer, separators=(",", ":")))
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return lines


def update(path: Path, answers: list[tuple[Example, Any]]) -> None:
    """Write the service's answers into ``path`` in place of the shown ones, each in its own style."""
    lines = page_lines(path)
    for example, answer in sorted(answers, key=lambda pair: -pair[0].answer_lines[0]):
        start, end = example.answer_lines
        indent = re.match(r"\s*", lines[start]).group(0)  # type: ignore[union-attr]
        first = f"{indent}# " if example.style == "comment" else ""
        # continuation lines keep the shown answer's own indentation
        pattern = r"\s*#\s*" if example.style == "comment" else r"\s*"
        default = f"{indent}#   " if example.style == "comment" else " "
        follow = re.match(pattern, lines[start + 1]).group(0) if end - start > 1 else default  # type: ignore[union-attr]
        text = wrapped(answer)
        lines[start:end] = [first + text[0], *(follow + t for t in text[1:])]
    write_whole(path, "\n".join(lines) + "\n")  # a page half written (a full disk) was a page lost


def check(files: list[Path], url: str, repository: Path, exact: bool, write: bool) -> list[str]:
    """Run every example of ``files`` against ``url``; returns the problems found (empty: all match).
    With ``write``, the pages get the service's answers instead and only failures to run count."""
    problems: list[str] = []
    for path in files:
        answers = []
        for example in extract(path):
            try:
                actual = run(example, url, repository)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
                problems.append(f"{example.path}:{example.line}: {error}")
                continue
            # --update: any changed value (within the tolerance, a page kept an older export's last digits)
            tolerance = 0.0 if write else RELATIVE_TOLERANCE
            found = differences(example.expected, actual, exact or write, tolerance=tolerance)
            if write and found:
                answers.append((example, actual))  # only answers that changed are rewritten
            elif not write:
                problems += [f"{path}:{example.line}: {d}" for d in found]
        if write and answers:
            update(path, answers)
    return problems


def docs_check(
    files: Annotated[list[Path] | None, typer.Argument(help="Markdown files (default: README.md docs/*.md).")] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A running service; default: start `ctr serve` on a free loopback port over --repository."),
    ] = None,
    repository: Annotated[
        Path,
        typer.Option(
            "--repository", "-r", help="The served model repository (with --url: the one that service serves)."
        ),
    ] = Path("models"),
    exact: Annotated[bool, typer.Option(help="Compare values too, not only shapes (the default models).")] = True,
    write: Annotated[bool, typer.Option("--update", help="Write the service's answers into the pages.")] = False,
    models_record: Annotated[
        Path, typer.Option(help="Which models the pages' answers came from (written by --update of every page).")
    ] = MODELS_RECORD,
) -> None:
    """Run the documentation's curl examples against a live service and compare the answers with the
    ones shown (`make docs-check`); exit 1 naming each mismatch. Values are compared only when the
    served models are those the pages' answers came from (``--models-record``); shapes always."""
    _docs_check(files, url, repository, exact, write, models_record)


def _docs_check(
    files: list[Path] | None, url: str | None, repository: Path, exact: bool, write: bool, models_record: Path
) -> None:
    every_page = not files  # the record speaks for every page: only a full --update rewrites it
    # a page named that holds no example (a wrong file, a block not ```sh) was "0 examples in 1 files: ... match"
    idle = [path for path in files or [] if not extract(path)]
    if idle:
        raise ValueError(
            f"{', '.join(map(str, idle))} {'holds' if len(idle) == 1 else 'hold'} no example: a curl command in a "
            "```sh or ```bash block with the answer shown below it (`# {...}` lines, or a ```json block)"
        )
    files = files or [Path("README.md"), *sorted(Path("docs").glob("*.md"))]
    if url is not None:
        from clients.client import require_ready

        require_ready(url)  # nothing there: one line, where every example failed on curl's exit code 7
    else:
        require_servable(repository)  # one line at once, where the service was waited on for 90 s
    unlike = [] if write or not exact else unlike_recorded(models_record, repository)
    if unlike:
        typer.echo(
            f"values not compared: the served {', '.join(unlike)} differ from the models the pages' answers came"
            f" from ({models_record}; trained on another machine, say);"
            " the answers' shapes are compared",
            err=True,
        )
        exact = False
    if url is not None:
        problems = check(files, url, repository, exact, write)
    else:
        with served(repository) as started:
            problems = check(files, started, repository, exact, write)
    count = sum(len(extract(path)) for path in files)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    if write and every_page:
        write_whole(models_record, json.dumps(fingerprints(repository), indent=2) + "\n")
    what = "written back" if write else "the answers match" if exact else "the answers' shapes match"
    typer.echo(f"{counted(count, 'example')} in {counted(len(files), 'file')}: {what}")


def require_servable(repository: Path) -> None:
    """FileNotFoundError naming ``repository`` unless ``ctr serve`` over it can get ready: a folder with an
    exported version of each role's model (as the service's settings name them). A repository that does
    not exist was found out only after the service's 90 s wait, and said in a traceback."""
    from common.repository import versions
    from service.settings import Settings

    if not repository.is_dir():
        what = "is a file, not a folder of models" if repository.exists() else "does not exist"
        raise FileNotFoundError(f"--repository {repository} {what}")
    roles = Settings(model_repository=repository).roles
    unexported = sorted({name for name in roles.values() if not versions(repository, name)})
    if unexported:
        raise FileNotFoundError(
            f"--repository {repository} holds no exported version of {', '.join(unexported)}, which the service"
            f" serves: run `ctr prepare -r {repository}`, or pass --url with a running service"
        )


@contextmanager
def served(repository: Path) -> Iterator[str]:
    """``ctr serve`` over ``repository`` on a free loopback port; yields its URL once ready. A service that
    does not get ready is a ValueError of one line with the reason its log gives (the whole log in a
    traceback named a log in a folder already removed)."""
    from clients import service_process

    with ExitStack() as stack:
        log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="docs-check-"))) / "serve.log"
        try:
            # an offline check: the online default deadline (1 s) only turned a busy machine into 504s
            deadline = {"CTR_REQUEST_TIMEOUT_MS": str(service_process.REQUEST_TIMEOUT_MS)}
            url, _ = stack.enter_context(service_process.served(repository, log, deadline))
        except RuntimeError:  # the service exited or was not ready in time; stopped by now
            raise ValueError(
                f"the service over {repository} did not get ready: {service_process.failure_reason(log)}"
            ) from None
        yield url
