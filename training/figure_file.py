"""Every figure the project draws is written here: whole or not at all, as PNG.

Written in place with ``figure.savefig(path)``, a failed write (a full disk, a file-size limit) destroyed
the figure there before and left a truncated PNG that a page still embedded. The PNG goes to
``written_whole``'s temporary path, renamed over ``path`` only once complete; its format is named because
the temporary name ends in ``.tmp``, from which matplotlib would not know to write a PNG.

matplotlib is not imported here (the figure comes in drawn): a command that writes no figure does not load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from common.whole_file import written_whole

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(figure: Figure, path: Path, dpi: int = 110) -> Path:
    """Write ``figure`` to ``path`` as a PNG (its folders made), leaving what was there if the writing fails."""
    with written_whole(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format="png")
    return path
