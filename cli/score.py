"""``ctr score``: a file of candidates scored offline, each row as ``POST /v1/score`` would score it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import ServedRepositoryOption, settings_with_options
from common.plural import counted


def score(
    candidates: Annotated[
        Path, typer.Argument(help="The candidates: a Parquet file, a folder of Parquet shards or 'DIR/*.parquet'.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Parquet file to write (a .parquet name, outside the candidates): the input's columns, then pctr, "
            "pctcvr and pcvr."
        ),
    ] = Path("scores.parquet"),
    repository: ServedRepositoryOption = None,
    ctr_model: Annotated[
        str | None, typer.Option(help="The model filling the ctr role (default: CTR_CTR_MODEL or esmm).")
    ] = None,
    ctcvr_model: Annotated[
        str | None, typer.Option(help="The model filling the ctcvr role (default: CTR_CTCVR_MODEL or esmm).")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Version of the model filling both roles (default: each role model's version as the service "
            "serves it, the newest its config.toml's serving.version_policy selects that loads).",
        ),
    ] = None,
) -> None:
    """Score a file of candidates with the served role models, as `POST /v1/score` scores them, without a
    service: the same checks, encoder and models (settings from CTR_* as `ctr serve` reads them). The rows of
    one request_id (consecutive) are scored as one request, else CTR_MAX_CANDIDATES rows at a time; a row the
    service would refuse ends the command naming the row."""
    from cli.reports import check_writable
    from training.offline_scores import check_paths, score_file, served_models

    check_writable(out)
    check_paths(candidates, out)  # before the models load
    given = {"model_repository": repository, "ctr_model": ctr_model, "ctcvr_model": ctcvr_model}
    settings = settings_with_options(given)
    scored = score_file(candidates, out, served_models(settings, version), settings)
    models = ", ".join(f"{role} {model['name']} v{model['version']}" for role, model in scored.models.items())
    typer.echo(f"scored {counted(scored.rows, 'row')} in {counted(scored.requests, 'request')} ({models}): wrote {out}")
