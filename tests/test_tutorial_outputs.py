"""The tutorials' command-line outputs are what the commands print.

The ``console`` and ``python`` blocks of each tutorial that shows commands
(docs/tutorial/command-line.md, getting-started.md) are run in order, in a temporary
directory: ``monespace`` commands in process with click's runner (standard output and
standard error as a terminal shows them), the Python blocks in one namespace, anything
else (``export``, ``printf``, ``grep``) as the shell would; the commands that install
monespace (:data:`INSTALLING`) are not run. What each command prints is compared with the
documented output, where:

- a line ``…`` stands for any number of lines the tutorial leaves out, and ``…`` within a
  line for any text (a path, a hash);
- ids (22 characters), provisional codes (``XXXX-XXXX-XXXX``), dates, times, the zone's
  abbreviation and hash prefixes vary from run to run: each documented value is bound to
  the value of the run the first time it is seen, must stand for that same value wherever
  it appears again, and is replaced by it in later commands (the code of step 3 is the one
  typed in step 4).

When the commands change what they print, the test fails and prints the run's output: copy
it into the tutorial.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from monespace.cli import main

TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorial"

#: The commands that install monespace: the test runs in an environment that has it.
INSTALLING = frozenset({"python -m venv .venv", ". .venv/bin/activate", "pip install -e '.[dev]'"})

#: What varies from run to run, most specific first.
_VARYING = re.compile(
    r"(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? Europe/Paris \((?:CET|CEST)\))"
    r"|(?P<date>\b\d{4}-\d{2}-\d{2}\b)"
    r"|(?P<code>\b[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}\b)"
    r"|(?P<hash>\b[0-9a-f]{16}\b)"
    r"|(?P<id>(?<![\w-])[A-Za-z0-9_-]{22}(?![\w-]))"
)
_PATTERNS = {
    "time": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? Europe/Paris \((?:CET|CEST)\)",
    "date": r"\d{4}-\d{2}-\d{2}",
    "code": r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}",
    "hash": r"[0-9a-f]{16}",
    "id": r"[A-Za-z0-9_-]{22}",
}
#: Documented dates that are data, not the day of the run (birth dates in the commands and
#: the CSV file): they are compared as they are.
_FIXED_DATES = {"1955-08-01", "1985-05-01", "1979-03-32", "1978-12-01"}
_ELIDED = "…"


@attrs.frozen
class Step:
    command: str
    expected: tuple[str, ...]
    python: bool = False


def steps(markdown: str) -> Iterator[Step]:
    """The commands of the ``console`` blocks, each with the lines documented after it, and
    the ``python`` blocks (the code as the command), in the order of the page."""
    for kind, block in re.findall(r"```(console|python)\n(.*?)```", markdown, flags=re.DOTALL):
        if kind == "python":
            yield Step(block, (), python=True)
            continue
        command: str | None = None
        expected: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    yield Step(command, tuple(expected))
                command, expected = line[2:], []
            else:
                expected.append(line)
        if command is not None:
            yield Step(command, tuple(expected))


class Bindings:
    """Documented varying values, bound to the run's values as they are first seen."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def pattern(self, line: str) -> tuple[re.Pattern[str], list[str]]:
        """A regular expression for a documented line, and the documented values of its
        groups in order."""
        parts, documented, position = [], [], 0
        for match in _VARYING.finditer(line.replace(_ELIDED, "\x00")):
            kind = match.lastgroup
            assert kind is not None
            value = match.group()
            if kind == "date" and value in _FIXED_DATES:
                continue
            parts.append(_literal(line[position : match.start()]))
            parts.append(f"({_PATTERNS[kind]})")
            documented.append(value)
            position = match.end()
        parts.append(_literal(line[position:]))
        return re.compile("".join(parts)), documented

    def match(self, expected: str, actual: str) -> bool:
        pattern, documented = self.pattern(expected)
        found = pattern.fullmatch(actual)
        if found is None:
            return False
        new: dict[str, str] = {}
        for doc, run in zip(documented, found.groups(), strict=True):
            bound = self.values.get(doc, new.get(doc))
            if bound is not None and bound != run:
                return False  # one documented value stands for one value of the run
            new[doc] = run
        self.values.update(new)
        return True

    def substitute(self, command: str) -> str:
        for documented, actual in self.values.items():
            command = command.replace(documented, actual)
        return command


def _literal(text: str) -> str:
    """A documented piece of a line as a pattern: itself, but ``…`` for any text."""
    return ".*?".join(re.escape(piece) for piece in text.split(_ELIDED))


def matches(expected: tuple[str, ...], actual: list[str], bindings: Bindings) -> bool:
    """Whether *actual* is *expected*, ``…`` lines standing for any lines (first fit)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == _ELIDED:
        return any(matches(rest, actual[skip:], bindings) for skip in range(len(actual) + 1))
    if not actual:
        return False
    saved = dict(bindings.values)
    if bindings.match(head, actual[0]) and matches(rest, actual[1:], bindings):
        return True
    bindings.values = saved
    return False


def run(command: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run one documented command; what it printed, line by line."""
    if command.startswith("export "):
        name, _, value = command.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, os.path.expandvars(value))
        return []
    if command.startswith("monespace "):
        argv = [os.path.expandvars(a) for a in shlex.split(command)[1:]]
        result = CliRunner().invoke(main, argv, catch_exceptions=False)
        return result.output.splitlines()
    shell = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, check=False
    )
    return (shell.stdout + shell.stderr).splitlines()


@pytest.mark.parametrize("tutorial", ["command-line.md", "getting-started.md"])
def test_the_tutorial_prints_what_it_says(tutorial, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "100")
    for name in ("MONESPACE_MASTER_KEY", "MONESPACE_KEY_FILE", "MONESPACE_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    bindings = Bindings()
    namespace: dict[str, object] = {"__name__": "tutorial"}
    for step in steps((TUTORIALS / tutorial).read_text(encoding="utf-8")):
        if step.python:
            exec(compile(step.command, tutorial, "exec"), namespace)  # the tutorial's own code
            continue
        if step.command in INSTALLING:
            continue
        command = bindings.substitute(step.command)
        shown = command.split()
        if shown[:1] == ["cat"] and not Path(shown[-1]).exists():
            # A file the reader writes: the tutorial shows its content.
            Path(shown[-1]).write_text("\n".join(step.expected) + "\n", encoding="utf-8")
        actual = run(command, tmp_path, monkeypatch)
        assert matches(step.expected, actual, bindings), (
            f"$ {step.command}\n--- documented:\n"
            + "\n".join(step.expected)
            + "\n--- printed:\n"
            + "\n".join(actual)
        )


def test_the_matcher_binds_one_documented_value_to_one_value():
    bindings = Bindings()
    first = "space cQBaXR9Mtc7fzP2diYhi7w is now active"
    assert bindings.match(first, "space AAAAAAAAAAAAAAAAAAAAAA is now active")
    assert not bindings.match(first, "space BBBBBBBBBBBBBBBBBBBBBB is now active")
    assert bindings.substitute("--code cQBaXR9Mtc7fzP2diYhi7w") == "--code AAAAAAAAAAAAAAAAAAAAAA"
    assert matches(("a", _ELIDED, "z"), ["a", "b", "c", "z"], Bindings())
    assert not matches(("a", "z"), ["a", "b", "z"], Bindings())
    assert not bindings.match("added 1 document", "added 2 documents")
    assert Bindings().match("storage: SQLite('/…/t.db')", "storage: SQLite('/tmp/x/t.db')")
