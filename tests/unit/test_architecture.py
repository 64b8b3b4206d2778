"""The shape of the code stays as the README's Layout says: the import contracts hold, the import
graph has no cycles, the worker has no hidden imports, and no module outgrows one screenful of ideas."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "service", "workers", "review_ui", "benchmarks")
MAX_LINES = 400


def _modules(*packages: str) -> list[Path]:
    return [
        p
        for package in packages
        for p in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in p.parts
    ]


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    kept = re.search(r"Contracts: (\d+) kept, (\d+) broken", run.stdout)
    assert kept is not None and int(kept.group(1)) >= 8 and kept.group(2) == "0", run.stdout


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    cycles = [
        (a, b)
        for a in sorted(graph.modules)
        for b in graph.find_modules_directly_imported_by(a)
        if a < b and graph.chain_exists(importer=b, imported=a)
    ]
    assert cycles == []


def test_no_production_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules(*PACKAGES)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


#: Entry points import the app's parts when a command runs, so `review-router --help` stays instant;
#: the benchmarks are entry points too (the CLI loads them by name).
LAZY_ENTRY_POINTS = ("service/cli/", "service/demo.py", "service/stack.py", "benchmarks/")


def _our_imports_inside_functions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                names = (
                    [a.name for a in inner.names]
                    if isinstance(inner, ast.Import)
                    else [inner.module or ""]
                    if isinstance(inner, ast.ImportFrom)
                    else []
                )
                if any(n.split(".")[0] in PACKAGES for n in names):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return found


def test_our_modules_are_imported_at_the_top_except_by_entry_points() -> None:
    """Imports inside functions hid the worker's cycles from readers and from the contracts; third-party
    libraries may still load lazily (the encoder, hdbscan)."""
    hidden = [
        where
        for path in _modules(*PACKAGES)
        if not str(path.relative_to(ROOT)).startswith(LAZY_ENTRY_POINTS)
        for where in _our_imports_inside_functions(path)
    ]
    assert hidden == []


def test_the_worker_runtime_is_typed() -> None:
    text = "\n".join(p.read_text() for p in _modules("workers"))
    assert "rt: Any" not in text and "getattr(rt" not in text and "rt._" not in text


def _layout() -> dict[Path, set[str]]:
    """The README's Layout block: each folder it lists (``name/`` at the line start, indented for a
    sub-folder) with the file and folder names its description mentions."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    folders: dict[Path, set[str]] = {}
    top = current = ROOT
    for line in block.splitlines():
        text = line
        head = re.match(r"^( *)([a-z_]+)/ ", line + " ")
        if head is not None:
            current = (top if head.group(1) else ROOT) / head.group(2)
            top = top if head.group(1) else current
            text = line[head.end() :]
        folders.setdefault(current, set()).update(re.findall(r"\b([a-z_]+(?:\.py|/))", text))
    return folders


def test_the_readme_layout_names_what_the_tree_holds() -> None:
    folders = _layout()
    missing = [
        f"{folder.relative_to(ROOT)}/{name}"
        for folder, names in folders.items()
        for name in names
        if not (folder / name).exists() and not list(folder.rglob(name.rstrip("/")))
    ]
    assert missing == []
    packages = {
        p.parent
        for package in PACKAGES
        for p in (ROOT / package).rglob("__init__.py")
        if "migrations" not in p.parts and p.parent.parent in (ROOT, ROOT / "service")
    }
    assert packages - set(folders) == set()


def test_the_readme_layout_names_every_module_of_the_core_and_the_worker() -> None:
    folders = _layout()
    for package in ("core", "workers"):
        modules = {p.name for p in (ROOT / package).glob("*.py") if p.name != "__init__.py"}
        assert modules - folders[ROOT / package] == set(), package
