"""Check that code marked ``# Copied from poi_hf.<module>.<name>`` still equals its source.

The model folders ``poi_hf/pin/`` and ``poi_hf/trn/`` ship as remote code (their files are copied into exported model
folders, relative imports only inside a folder), so some code is duplicated between them. As in transformers, each
duplicate carries a marker comment on the line right above its ``def``, ``class`` or assignment::

    # Copied from poi_hf.trn.modeling_trn.check_labels
    def check_labels(labels, num_labels): ...

    # Copied from poi_hf.trn.modeling_trn.TRNPreTrainedModel with TRN->PIN, trn->pin
    class PINPreTrainedModel(PreTrainedModel): ...

The target is a dotted path: a module of the package, then a top-level name, optionally a nested one
(``Class.method``). ``with Old->New[, Old->New ...]`` replaces text in the source, in that order, before comparing.
Decorators belong to the copied block; the marker's own indentation is the copy's.

Usage::

    python utils/check_copies.py           # report every copy that differs from its source; exit 1 if any
    python utils/check_copies.py --fix     # rewrite those copies from their sources
    python utils/check_copies.py FILE ...  # check only these files or folders (default: the poi_hf package)
"""

import argparse
import ast
import difflib
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "poi_hf"
MARKER_PREFIX = "# Copied from"
REPLACEMENT = r"[^\s,]+->[^\s,]*"
MARKER = re.compile(
    rf"# Copied from (?P<target>{PACKAGE}(?:\.\w+)+)(?: with (?P<replacements>{REPLACEMENT}(?:, ?{REPLACEMENT})*))?"
)
NAMED_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


@dataclass
class Problem:
    """A copy that differs from its source, or a marker that cannot be checked."""

    path: Path
    line: int
    name: str
    message: str
    diff: str = ""
    fixed: bool = False

    def __str__(self) -> str:
        report = f"{_display(self.path)}:{self.line}: {self.name}: {self.message}"
        return f"{report}\n{self.diff}" if self.diff and not self.fixed else report


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _name(node: ast.AST) -> str | None:
    """The name a def, class or single-name assignment defines; None for anything else."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    if len(targets) == 1 and isinstance(targets[0], ast.Name):
        return targets[0].id
    return None


def _first_line(node: ast.stmt) -> int:
    """1-based first line of a statement, decorators included."""
    return min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])


def _reindent(lines: list[str], old: str, new: str) -> list[str]:
    """Swap the leading ``old`` indentation of each line for ``new``; blank lines become empty."""
    reindented = []
    for line in lines:
        if not line.strip():
            line = "\n"
        elif line.startswith(old):  # lines of a multi-line string may start further left; they stay as they are
            line = new + line[len(old) :]
        reindented.append(line)
    return reindented


def source_code(target: str, root: Path = REPO_ROOT) -> list[str]:
    """The lines of ``target`` (``poi_hf.module.Name[.nested]``) in its file under ``root``, dedented to column 0.

    Raises `LookupError` naming what is missing when the module or the name cannot be found.
    """
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module = root.joinpath(*parts[:split])
        for path in (module.with_suffix(".py"), module / "__init__.py"):
            if path.is_file():
                return _find_definition(path, parts[split:], target)
    raise LookupError(f"no module of {target} exists under {root}")


def _find_definition(path: Path, names: list[str], target: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    body = ast.parse(text, filename=str(path)).body
    node = None
    for name in names:
        node = next((child for child in body if isinstance(child, NAMED_NODES) and _name(child) == name), None)
        if node is None:
            raise LookupError(f"{_display(path)} defines no {name!r} (looked for {target})")
        body = getattr(node, "body", [])
    lines = text.splitlines(keepends=True)[_first_line(node) - 1 : node.end_lineno]
    return _reindent(lines, " " * node.col_offset, "")


def _marker_lines(text: str) -> dict[int, str]:
    """1-based line -> text of every comment that starts with "# Copied from" and stands alone on its line."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        alone = token.line.strip() == token.string.strip()
        if token.type == tokenize.COMMENT and token.string.startswith(MARKER_PREFIX) and alone:
            comments[token.start[0]] = token.string.rstrip()
    return comments


def check_file(path: Path, root: Path = REPO_ROOT, fix: bool = False) -> list[Problem]:
    """Check every marked copy in ``path`` against its source under ``root``; with ``fix``, rewrite the copies that
    differ (their problems come back with ``fixed=True``)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text, filename=str(path))
    statements = {_first_line(node): node for node in ast.walk(tree) if isinstance(node, NAMED_NODES)}
    problems, rewrites = [], []
    for line, comment in _marker_lines(text).items():
        match = MARKER.fullmatch(comment)
        node = statements.get(line + 1)
        name = _name(node) if node is not None else None
        if match is None:
            form = f"# Copied from {PACKAGE}.<module>.<name>[ with Old->New[, Old->New]]"
            problems.append(Problem(path, line, name or "?", f"malformed marker {comment!r}; expected {form!r}"))
            continue
        target = match["target"]
        if name is None:
            where = "is not directly above a def, class or single-name assignment"
            problems.append(Problem(path, line, "?", f"the marker for {target} {where}"))
            continue
        try:
            expected = source_code(target, root)
        except LookupError as error:
            problems.append(Problem(path, line, name, f"cannot find the source: {error}"))
            continue
        expected = "".join(_reindent(expected, "", " " * node.col_offset))
        for pair in (match["replacements"] or "").split(","):
            if pair.strip():
                old, new = pair.strip().split("->")
                expected = expected.replace(old, new)
        start, end = _first_line(node) - 1, node.end_lineno
        actual = "".join(lines[start:end])
        if not expected.endswith("\n"):
            expected += "\n"
        if actual != expected:
            diff = difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True), f"{target} (source)", "copy"
            )
            verb = "rewritten from" if fix else "differs from"
            problems.append(Problem(path, line, name, f"{verb} its source {target}", "".join(diff), fixed=fix))
            rewrites.append((start, end, expected))
    if fix and rewrites:
        for start, end, expected in sorted(rewrites, reverse=True):  # bottom up, so earlier line numbers hold
            lines[start:end] = [expected]
        path.write_text("".join(lines), encoding="utf-8")
    return problems


def check_copies(paths: list[Path], root: Path = REPO_ROOT, fix: bool = False) -> list[Problem]:
    """`check_file` on every .py file in ``paths`` (files or folders)."""
    files = sorted(file for path in paths for file in ([path] if path.is_file() else path.rglob("*.py")))
    return [problem for file in files for problem in check_file(file, root, fix)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check that '# Copied from' code equals its source.")
    parser.add_argument(
        "paths", nargs="*", type=Path, default=[REPO_ROOT / PACKAGE], help="files or folders (default: poi_hf/)"
    )
    parser.add_argument("--fix", action="store_true", help="rewrite the copies that differ from their sources")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    problems = check_copies(args.paths, fix=args.fix)
    for problem in problems:
        print(problem)
    left = [problem for problem in problems if not problem.fixed]
    if left:
        hint = "" if args.fix else "; `python utils/check_copies.py --fix` rewrites copies from their sources"
        print(f"{len(left)} problem(s) with '# Copied from' code{hint}.", file=sys.stderr)
        return 1
    print("Every '# Copied from' copy matches its source.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
