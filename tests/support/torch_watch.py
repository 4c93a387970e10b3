"""The opening of a script run in a fresh process to prove that what it does imports no torch.

A finder first on ``sys.meta_path`` records every attempt to import torch, even one a library would
swallow; the script that follows prints, as its last line, a JSON object that holds ``attempts`` and
``torch_loaded`` beside what it measured.
"""

from __future__ import annotations

import textwrap

WATCH_TORCH = textwrap.dedent(
    """
    import json, sys
    attempts = []

    class Watch:  # records any attempt to import torch, even one a library would swallow
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                attempts.append(name)
            return None

    sys.meta_path.insert(0, Watch())
    """
)
