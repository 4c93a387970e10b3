"""``ctr new``: start a repository model from a kind's defaults or a copy of another model's config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import RepositoryOption


def new(
    name: Annotated[str, typer.Argument(help="The new model's name (models/NAME/config.toml).")],
    kind: Annotated[
        str | None, typer.Option(help="The model kind (e.g. esmm, adversarial_ctr); this or --from.")
    ] = None,
    copy_from: Annotated[
        str | None, typer.Option("--from", help="Copy this existing model's config; this or --kind.")
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(help="Feature spec (TOML), kept as models/NAME/spec.toml (--from copies the other's, if any)."),
    ] = None,
    repository: RepositoryOption = Path("models"),
    exist_ok: Annotated[
        bool,
        typer.Option(
            "--exist-ok",
            help="An existing NAME is kept as it is, said in one line (with where it first differs from what this "
            "command would write), and the command succeeds; one of another kind is still refused.",
        ),
    ] = False,
) -> None:
    """Write models/NAME/config.toml from a kind's defaults or a copy of another model's (never overwrites:
    --exist-ok keeps an existing one and succeeds)."""
    from common.repository import read_config
    from training.models.kinds import trains_on
    from training.new_model import KIND_NOTES, kept_model, new_model
    from training.training_files import SPEC_FILE

    kept = kept_model(repository, name, kind, copy_from, spec) if exist_ok else None
    if kept is not None:  # a pipeline's rerun: what it started, and the user may have edited since, stays
        typer.echo(kept)
        return
    path = new_model(repository, name, kind, copy_from, spec)
    kind = read_config(repository, name).get("kind")  # with --from, the copied config's
    where = "" if repository == Path("models") else f" -r {repository}"
    logs = "--logs DISPLAYED --non-displayed OTHER" if trains_on(kind) == "queries" else "--logs LOGS"
    if (path.parent / SPEC_FILE).is_file():  # --spec's or --from's: the spec's features are the user's own logs
        typer.echo(f"wrote {path}; next: ctr train {name}{where} {logs}")
    else:
        own_logs = f"ctr train {name}{where} {logs} --spec SPEC.toml"
        typer.echo(f"wrote {path}; next: {own_logs} (your logs) or ctr train {name}{where} (the world simulator's)")
    if copy_from is None and kind in KIND_NOTES:  # a copied config is the one its author tuned
        typer.echo(f"note: {KIND_NOTES[kind]}")
