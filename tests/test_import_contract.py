"""The import graph points down: the library never imports its shells, and the shells keep to each other's front door.

* the library (every module but ``digitlab.cli``, ``digitlab.serve`` and ``python -m digitlab``'s
  ``digitlab.__main__``) imports neither;
* ``digitlab.serve`` never imports ``digitlab.cli``;
* ``digitlab.cli`` imports the server only through ``digitlab.serve`` itself (its ``__all__``), not its modules;
* ``import digitlab`` and its public names load no torch until a CNN is used.

Imports are read from the source (module level and inside functions alike), so a lazy import counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "digitlab"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "digitlab" or name.startswith("digitlab.")}


MODULES = {_module_name(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_contract_sees_the_whole_package() -> None:
    assert {"digitlab", "digitlab.cli", "digitlab.serve", "digitlab.models"} <= set(MODULES)
    assert len(MODULES) > 30


@pytest.mark.parametrize("shell", ["digitlab.cli", "digitlab.serve"])
def test_the_library_never_imports_the_cli_or_the_server(shell: str) -> None:
    library = {m: imps for m, imps in MODULES.items()
               if not (_within(m, "digitlab.cli") or _within(m, "digitlab.serve") or m == "digitlab.__main__")}
    offenders = {m: sorted(i for i in imps if _within(i, shell)) for m, imps in library.items()}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_server_never_imports_the_cli() -> None:
    offenders = {m: sorted(i for i in imps if _within(i, "digitlab.cli"))
                 for m, imps in MODULES.items() if _within(m, "digitlab.serve")}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_cli_reaches_the_server_only_through_its_public_names() -> None:
    import digitlab.serve

    public = {f"digitlab.serve.{name}" for name in digitlab.serve.__all__} | {"digitlab.serve"}
    offenders = {m: sorted(i for i in imps if _within(i, "digitlab.serve") and i not in public)
                 for m, imps in MODULES.items() if _within(m, "digitlab.cli")}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_import_digitlab_loads_no_torch() -> None:
    code = ("import sys, digitlab; digitlab.load_mnist; digitlab.make_model; digitlab.load_model; digitlab.Store; "
            "digitlab.to_mnist; digitlab.train; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC.parent), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False", out.stderr


def test_every_public_name_resolves() -> None:
    import digitlab

    for name in digitlab.__all__:
        assert getattr(digitlab, name) is not None, name


def test_all_lists_exactly_the_lazy_names() -> None:
    import digitlab

    assert set(digitlab.__all__) == {"__version__", *digitlab._LAZY}
