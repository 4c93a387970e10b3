"""``ctr spec infer``: propose a feature spec (TOML) from a log's columns."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.help_text import HelpTyper

spec_app = HelpTyper(help="Feature specs: propose one from your logs.", no_args_is_help=True)


@spec_app.command("infer")
def infer(
    logs: Annotated[Path, typer.Option(help="Your impression log (Parquet/CSV file or directory).")],
    out: Annotated[Path | None, typer.Option(help="Write the TOML here instead of printing it.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out file (refused without: a spec is edited).")
    ] = False,
) -> None:
    """Propose a feature spec (TOML) from a log's columns: kinds, sides, buckets and defaults to edit."""
    from cli.reports import check_writable, write_whole
    from training.logs.spec_infer import infer_spec, spec_toml

    if out is not None:
        check_writable(out)
        if out.exists() and not overwrite:  # the proposal is edited by hand: writing over it lost the edits
            raise FileExistsError(f"--out {out} exists (a spec edited since, perhaps): pass --overwrite to replace it")
    text = spec_toml(infer_spec(logs), logs)
    if out is None:
        typer.echo(text)
    else:
        write_whole(out, text)  # its folder made, as a report's (it was "No such file or directory")
        typer.echo(f"wrote {out}")
