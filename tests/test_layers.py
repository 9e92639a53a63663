"""No package imports a package above it: the layers of DESIGN.md, checked on the source (imports inside functions
and under TYPE_CHECKING count too). Print the package graph: ``python tests/test_layers.py``."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "stressor"

# Lowest first. A module may import its own layer's modules and those below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "units", "timestamps", "secrets", "loopback", "runtime", "wake", "scores", "clock", "asgi_server",
     "beside"),
    ("document", "profile", "thresholds", "plan", "estimate", "polling", "shares", "capacity", "stats"),
    ("limits", "governor", "metrics", "intervals", "grades", "verdicts", "tiers", "progress"),
    ("http",),
    ("targets",),
    ("webhooks", "sim"),
    ("engine", "runlog", "calllogs", "distributed", "session", "running"),
    ("report",),
    ("cli", "__main__"),
)
LAYER_OF = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def top_level(module: str) -> str:
    """``stressor.targets.testcalls.target`` -> ``targets``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def package_imports() -> dict[str, set[str]]:
    """Each top-level package or module of stressor -> the others it imports."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        # a `python -m` entry point (stressor.sim.__main__ runs `stressor sim`) sits on top, as the CLI does
        here = "__main__" if relative.name == "__main__" else top_level(".".join(relative.parts))
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("stressor.") and (there := top_level(name)) and there != here:
                    edges[here].add(there)
    return edges


def test_every_module_has_a_layer() -> None:
    modules = {top_level(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert modules - {""} <= set(LAYER_OF), f"give these a layer: {sorted(modules - {''} - set(LAYER_OF))}"


def test_no_package_imports_one_above_it() -> None:
    upward = [
        f"stressor.{here} (layer {LAYER_OF[here]}) imports stressor.{there} (layer {LAYER_OF[there]})"
        for here, theirs in sorted(package_imports().items())
        for there in sorted(theirs)
        if here in LAYER_OF and there in LAYER_OF and LAYER_OF[there] > LAYER_OF[here]
    ]
    assert not upward, "\n".join(upward)


def test_packages_import_each_other_in_no_loop() -> None:
    edges = package_imports()
    loops = [f"{a} <-> {b}" for a, theirs in edges.items() for b in theirs if a in edges.get(b, set()) and a < b]
    assert not loops, loops


if __name__ == "__main__":
    for package, imported in sorted(package_imports().items()):
        print(f"{package} ({LAYER_OF.get(package, '?')}) -> {', '.join(sorted(imported))}", file=sys.stdout)


def test_the_pure_core_loads_no_io_library() -> None:
    # in a fresh interpreter: what importing the core pulls in, nothing else the tests loaded
    core = "stressor.profile, stressor.plan, stressor.estimate, stressor.limits, stressor.metrics, stressor.progress"
    probe = f"import sys, {core}; print(sorted(m for m in ('httpx', 'rich', 'anyio', 'uvicorn') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
