"""The house's rules, checked on the source: no import circle, no import upwards, small modules and functions.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside
functions: a circle that only the type checker sees is still a circle in the
design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
#: the core's floors, lowest first: a module imports only from its own floor or below
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "names", "fileio", "digests", "resources", "spread_dirs", "__init__"),
    ("config", "sandbox", "apt", "source", "locks", "result", "userns", "foreign_arch", "build_commands",
     "orphans", "logs", "bootstrap", "layerstore", "build_deps_cache", "stage_commands", "check_reports",
     "build_sources", "caller_commands", "aptitude_resolver", "dpkg_status", "remote_cache",
     "tarballs", "trash", "source_trees"),
    ("services",),
    ("base_setup", "base_upgrade", "stage_runner", "result_checks", "signing", "builder", "copies", "scrub",
     "source_fetch", "build_deps_remote"),
    ("root", "hookspecs"),
    ("plugin_manager", "plugins"),
    ("cli", "api", "__main__"),
)
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for deb_mock and the built-in plugins (installed as deb_mock.plugins)."""
    modules: dict[str, Path] = {}
    for base, package in ((TOP / "deb_mock", "deb_mock"), (TOP / "plugins", "deb_mock.plugins")):
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (anywhere in the file)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined by the module ``base`` itself
                found.add(base)
    return {_owner(module, known) for module in found if _owner(module, known)} - {name}


def _owner(module: str, known: set[str]) -> str:
    while module and module not in known:
        module = module.rpartition(".")[0]
    return module


def _graph() -> dict[str, set[str]]:
    files = _module_files()
    known = set(files)
    return {name: _imports(name, path, known) for name, path in files.items()}


def _floor(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(FLOORS):
        if key in names:
            return index
    raise AssertionError(f"{module}: not on any floor of tests/unit/test_house.py (add it to FLOORS)")


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append([*trail[trail.index(target):], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_checker_sees_a_circle(tmp_path: Path) -> None:
    """The walker resolves relative and TYPE_CHECKING imports: a made-up circle is found."""
    a = tmp_path / "a.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from deb_mock.b import X\n")
    b = tmp_path / "b.py"
    b.write_text("from . import a\n")
    known = {"deb_mock", "deb_mock.a", "deb_mock.b"}
    assert _imports("deb_mock.a", a, known) == {"deb_mock.b"}
    assert _imports("deb_mock.b", b, known) == {"deb_mock.a"}


def test_no_import_from_a_lower_floor_to_a_higher_one() -> None:
    upward = [f"{source} (floor {_floor(source)}) -> {target} (floor {_floor(target)})"
              for source, targets in sorted(_graph().items()) for target in sorted(targets)
              if _floor(target) > _floor(source)]
    assert not upward, "imports that run upwards:\n" + "\n".join(upward)


@pytest.mark.parametrize("name", sorted(_module_files()))
def test_modules_and_functions_stay_small(name: str) -> None:
    path = _module_files()[name]
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path}: over {MAX_MODULE_LINES} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


#: what hook calls in the core may pass as ``root``: the services, never the Root with its verbs
_SERVICES_EXPRESSIONS = {"self.services", "services", "root.services", "self"}


def test_hooks_receive_the_services_not_the_root() -> None:
    wrong: list[str] = []
    for name, path in sorted(_module_files().items()):
        if name.startswith("deb_mock.plugins"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr.startswith("debmock_")):
                continue
            for keyword in node.keywords:
                passed = ast.unparse(keyword.value)
                allowed = (passed == "self" and path.name == "services.py") or \
                    (passed != "self" and passed in _SERVICES_EXPRESSIONS)
                if keyword.arg == "root" and not allowed:
                    wrong.append(f"{path.name}:{node.lineno}: {node.func.attr}(root={passed})")
    assert not wrong, "hooks called with something other than the root's services:\n" + "\n".join(wrong)
