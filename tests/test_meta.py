"""Meta-tests that keep the public surface and the plugin documentation honest."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import monespace
from monespace import hookspecs

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(monespace.__path__, "monespace.")
    if not m.name.split(".")[-1].startswith("_") or m.name.endswith("__init__")
)
PUBLIC_PACKAGES = ["monespace", *[m for m in MODULES if m.count(".") >= 1]]


def _ruff_order(names):
    """The order ruff's RUF022 keeps __all__ in: SCREAMING_CASE, CamelCase, then the rest."""

    def key(name):
        if name.isupper() or (name.upper() == name and "_" in name):
            group = 0
        elif name[:1].isupper():
            group = 1
        else:
            group = 2
        return (group, name)

    return sorted(names, key=key)


@pytest.mark.parametrize("module_name", PUBLIC_PACKAGES)
def test_all_is_complete_and_sorted(module_name):
    """Every public name a public module defines or re-exports is listed in its __all__."""
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    assert list(exported) == _ruff_order(exported)
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name}"
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__.startswith(module_name)
        # Hook specifications are implemented by plugins, not imported from the module.
        and not (module_name == "monespace.hookspecs" and name.startswith("monespace_"))
    }
    missing = public - set(exported)
    assert not missing, f"{module_name} does not export {sorted(missing)}"


def _hookspecs():
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("monespace_"):
            yield name, list(inspect.signature(function).parameters)


def test_every_hookspec_is_documented():
    """docs/plugins/hooks.md has a '## name(args)' heading for each hook, exactly."""
    text = (ROOT / "docs" / "plugins" / "hooks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (monespace_\w+\([^)]*\))", text, flags=re.MULTILINE))
    expected = {f"{name}({', '.join(args)})" for name, args in _hookspecs()}
    assert headings == expected


def test_every_hookspec_has_a_test():
    source = (ROOT / "tests" / "test_plugins.py").read_text(encoding="utf-8")
    for name, _ in _hookspecs():
        assert f"def test_hook_{name}" in source


def test_every_hookspec_has_a_docstring_with_its_parameters():
    for name, args in _hookspecs():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert ".. versionadded::" in doc, name
        for arg in args:
            assert f":param {arg}:" in doc, f"{name} does not document {arg}"


def test_every_module_imports_without_warnings():
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in MODULES)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


#: Run in a fresh interpreter where the development tools cannot be imported, as after the
#: README's ``pip install ".[server]"``.
_WITHOUT_DEV_TOOLS = """
import sys
for name in ("pytest", "_pytest", "hypothesis"):
    sys.modules[name] = None  # importing it raises ImportError
from monespace.cli import main
import monespace.server, monespace.conformance
try:
    main(["--help"])
except SystemExit as end:
    sys.exit(end.code)
"""


def test_the_command_line_and_the_server_need_no_development_tool():
    """``monespace`` must start on a machine with only the ``server`` extra installed:
    ``monespace.testing`` (which needs pytest) is for test suites only."""
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DEV_TOOLS], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


#: Run in a fresh interpreter: imports monespace with a plugin installed under the entry-point
#: group, then builds the plugins of a space, and prints what each step loaded.
_PLUGIN_PROBE = """
import importlib.metadata as md, json, sys
sys.path.insert(0, sys.argv[1])  # the fake distribution and its plugin module
loaded = []
load = md.EntryPoint.load
def spy(self):
    loaded.append(self.value)
    return load(self)
md.EntryPoint.load = spy
def seen():
    from monespace.plugins import DEFAULT_PLUGINS
    modules = sorted(m for m in sys.modules if m in DEFAULT_PLUGINS or m == "fake_monespace_plugin")
    return {"entry points": sorted(loaded), "modules": modules}
import monespace
on_import = seen()
monespace.plugins.Plugins()
print(json.dumps({"import": on_import, "space": seen()}))
"""


def test_importing_monespace_loads_no_plugin(tmp_path):
    """Plugins are loaded by each space, never by ``import monespace``: no entry point is
    loaded and no plugin module (built-in or installed) is imported. The second half checks
    the probe itself: building a space's plugins loads both."""
    (tmp_path / "fake_monespace_plugin.py").write_text('"""An empty plugin."""\n')
    dist = tmp_path / "fake_monespace_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-monespace-plugin\n")
    (dist / "entry_points.txt").write_text("[monespace]\nfake = fake_monespace_plugin\n")
    result = subprocess.run(
        [sys.executable, "-c", _PLUGIN_PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["import"] == {"entry points": [], "modules": []}
    assert "fake_monespace_plugin" in seen["space"]["entry points"]
    assert seen["space"]["modules"] == ["fake_monespace_plugin", "monespace._builtin"]
