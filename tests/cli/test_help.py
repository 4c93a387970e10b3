"""`ctr --help` and each command's help: a sentence on one line, an option's help said, the defaults said true."""

from __future__ import annotations

import inspect

import pytest
import typer.main
from typer.testing import CliRunner

from cli.help_text import unwrapped
from cli.main import app
from clients.bench.batch_size_grid import SIZES


def shown(*args: str) -> list[str]:
    """The help's lines at 200 columns, the panels' borders and runs of spaces dropped."""
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, result.output
    return [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]


def commands(group) -> dict:
    context = typer.Context(group)
    return {name: group.get_command(context, name) for name in group.list_commands(context)}


def every_command(group=None, path=()):
    group = typer.main.get_command(app) if group is None else group
    for name, command in commands(group).items():
        yield (*path, name), command
        if hasattr(command, "list_commands"):
            yield from every_command(command, (*path, name))


@pytest.mark.parametrize("group", [(), ("bench",), ("experiment",), ("spec",)])
def test_each_command_s_first_sentence_is_on_one_line(group):
    """The docstrings' source line breaks were the help's: "... that has a config but" / "no exported version yet"
    (about 95 characters in); a sentence longer than the column wraps where the column ends, past 120."""
    lines = shown(*group)
    root = typer.main.get_command(app)
    listed = commands(root) if not group else commands(commands(root)[group[0]])
    for name, command in listed.items():
        doc = command.help or ""
        first = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()).split(". ")[0][:120]
        assert any(line.startswith(f"{name} {first}") for line in lines), (name, first)


def test_every_option_says_what_it_is():
    """`ctr simulate --days` and `--requests-per-day` had no help."""
    for path, command in every_command():
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and param.name != "help":
                assert param.help, f"ctr {' '.join(path)} {param.opts[0]}"


def test_the_batch_sizes_help_states_the_default_sizes():
    """It said "1, 2, 4, ... 1024" where SIZES are 1, 8, 32, ... 1024."""
    assert any(f"(default: {', '.join(map(str, SIZES))})" in line for line in shown("bench", "batch-sizes"))


def test_export_s_work_dir_is_where_the_checkpoint_is_read():
    """ctr export only reads the checkpoint there; the shared wording said logs and checkpoints go there."""
    assert any("--work-dir <path> Where `ctr train` saved the checkpoint" in line for line in shown("export"))


def test_unwrapped_joins_a_paragraph_s_lines_and_keeps_paragraphs():
    text = """First line
        goes on.

        Second paragraph
        too.

        \bkept
        as is"""
    assert unwrapped(text) == "First line goes on.\n\nSecond paragraph too.\n\n\bkept\nas is"
    assert unwrapped(None) is None


def test_a_config_section_named_in_a_help_text_is_shown():
    """Rich reads ``[model]`` as markup and drops it: `ctr export --help` read "(another kind,  or , or for
    the world's simulated logs  or )". Every section a help text names is on the screen."""
    import re

    for path, command in every_command():
        texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
        named = {m for text in texts for m in re.findall(r"\[([a-z_]+)\]", text)}
        screen = " ".join(shown(*path))
        assert not [f"[{s}]" for s in named if f"[{s}]" not in screen], path


def test_below_100_columns_the_help_is_plain_and_cuts_no_option_short(monkeypatch, capsys):
    """At 80 columns (a terminal's, and a pipe's or a file's) rich's option tables cut option names and
    defaults ("--no-service-wo…"): the command line prints click's plain help there, which wraps instead."""
    monkeypatch.setenv("COLUMNS", "80")
    for path, command in every_command():
        if hasattr(command, "list_commands"):
            continue
        with pytest.raises(SystemExit):
            app([*path, "--help"])
        text = capsys.readouterr().out
        assert "…" not in text and "╭" not in text, path
        for param in command.params:
            for name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
                if name.startswith("--"):
                    assert name in text, (path, name)
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit):
        app(["experiment", "cvr", "--help"])
    assert "╭─ Options" in capsys.readouterr().out  # rich's, where it has room


def test_a_first_sentence_with_an_abbreviation_is_listed_whole_at_80_columns():
    """`ctr experiment --help` listed moore2018 as "Moore et al.": click ends a first sentence at the first word
    ending in a full stop."""
    result = CliRunner().invoke(app, ["experiment", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "moore2018 Moore et al. 2018 section 5: the synthetic feedback loop" in text, result.output
