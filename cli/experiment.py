"""``ctr experiment ...``: paper reproductions and method comparisons on the world simulator.

Each experiment is one command here; its logic lives in ``training/experiments/<name>.py``. Every
experiment writes a JSON report with stable keys and a PNG plot, and prints a table.
"""

from __future__ import annotations

import typer

experiment_app = typer.Typer(help="Paper reproductions and method comparisons.", no_args_is_help=True)
