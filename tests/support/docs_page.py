"""A Markdown page for `ctr docs-check`: one shell example that runs ``setup``, then asks the service whether
it is ready."""

from __future__ import annotations

from pathlib import Path

PAGE = """# A page

```sh
{setup}
curl -s localhost:8000/v2/health/ready
# {{}}
```
"""


def page(folder: Path, setup: str = "true") -> Path:
    path = folder / "page.md"
    path.write_text(PAGE.format(setup=setup))
    return path
