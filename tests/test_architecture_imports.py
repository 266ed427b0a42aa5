"""The import graph of poi_hf has no cycle.

Every import counts, also those under ``TYPE_CHECKING`` and inside functions: a cycle hidden there breaks as soon as
someone moves the import to the top of the file, and it means two modules each need the other.
"""

from __future__ import annotations

import ast
from importlib.util import resolve_name
from pathlib import Path

import poi_hf

PACKAGE_ROOT = Path(poi_hf.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The poi_hf modules that ``name`` (at ``path``) imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_name("." * node.level + (node.module or ""), package)
            for alias in node.names:
                # `from . import pipelines` imports a submodule; `from .losses import joint_losses` the module itself.
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in modules else base)
    return {target for target in targets if target in modules and target != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search with an explicit stack)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = "open"
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(child) == "open":
                return path[path.index(child) :] + [child]
            elif child not in state:
                state[child] = "open"
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    return None


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


MODULE_WITH_EVERY_KIND_OF_IMPORT = """
from typing import TYPE_CHECKING

import torch
import poi_hf.hub
from . import synthetic, CROP_STYLES
from .. import losses
from ..pin.modeling_pin import check_labels

if TYPE_CHECKING:
    from ..modeling_poi import POIOutput


def load():
    from ..presets import tiny_pin_config
"""


def test_every_kind_of_import_is_an_edge(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(MODULE_WITH_EVERY_KIND_OF_IMPORT)
    found = imported_modules("poi_hf.data.mod", source, set(package_modules()))
    assert found == {
        "poi_hf.hub",
        "poi_hf.data.synthetic",  # `from . import synthetic`: the submodule
        "poi_hf.data",  # `from . import CROP_STYLES`: a name of the package
        "poi_hf.losses",
        "poi_hf.pin.modeling_pin",
        "poi_hf.modeling_poi",  # under TYPE_CHECKING
        "poi_hf.presets",  # inside a function
    }


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "poi_hf has an import cycle: " + " -> ".join(cycle)
