"""`solver/` is the pure optimisation core: no web, database or queue code."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLVER = ROOT / "solver"
FORBIDDEN = ("flask", "sqlalchemy", "rq", "redis", "scheduler", "web")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement names, anywhere in the file (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value))
    return out


def forbidden(module: str) -> bool:
    return module.split(".")[0] in FORBIDDEN


SOURCES = sorted(SOLVER.rglob("*.py"))


def test_there_are_sources_to_check() -> None:
    names = {p.relative_to(SOLVER).as_posix() for p in SOURCES}
    assert {"__init__.py", "cli.py", "solve.py", "problem.py", "rules/catalogue.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(SOLVER).as_posix())
def test_no_forbidden_import_statement(path: Path) -> None:
    bad = [f"{path.name}:{line}: {mod}" for line, mod in imported_modules(path) if forbidden(mod)]
    assert not bad


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        import os
        def f():
            from web.app import create_app
            import redis.client
            return importlib.import_module("rq")
    """), encoding="utf-8")
    mods = [m for _, m in imported_modules(sample)]
    assert [m for m in mods if forbidden(m)] == ["web.app", "redis.client", "rq"]
    assert not forbidden("os") and not forbidden("requests") and not forbidden("websocket")


def test_importing_the_solver_loads_none_of_them() -> None:
    code = textwrap.dedent(f"""
        import sys
        import solver, solver.cli, solver.solve
        bad = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
        assert not bad, bad
        print("clean")
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "clean"
