#!/usr/bin/env python3
"""The crate's own import graph: which file of src/ uses which (through `use crate::…`,
`use super::…` and inline `crate::…` paths), its cycles, and, with --layers, whether any file
imports one from a layer above its own.

    python3 tools/import_graph.py              # cycles (strongly connected components)
    python3 tools/import_graph.py --edges      # every edge
    python3 tools/import_graph.py --layers tools/layers.txt   # exit 1 on an upward import

A layers file lists one layer per line, lowest first, as whitespace-separated module paths
(`cost`, `cpu::gibbs`, `cpu` for all of cpu/); `#` starts a comment. A file belongs to the
longest listed path that prefixes its module path. Files in no layer are reported.
"""

import argparse
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def modules():
    """Module path (tuple) -> file, for the library (src/bin excluded)."""
    found = {}
    for path in SRC.rglob("*.rs"):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "bin":
            continue
        parts = list(rel.with_suffix("").parts)
        if parts == ["lib"]:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        found[tuple(parts)] = path
    return found


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def use_paths(tree):
    """Expand a `use` tree (`a::{b, c::{d, e}}`) into its paths."""
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        return [tree.split(" as ")[0].strip()]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    parts, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    parts.append(current)
    return [prefix + p for part in parts if part.strip() for p in use_paths(part)]


def references(module, text):
    """Absolute module paths `module`'s text refers to."""
    text = strip_comments(text)
    paths = []
    for tree in re.findall(r"\buse\s+([^;]+);", text, flags=re.S):
        paths.extend(use_paths(" ".join(tree.split())))
    paths.extend(re.findall(r"\bcrate(?:::\w+)+", text))
    resolved = []
    for p in paths:
        segments = [s for s in p.replace(" ", "").split("::") if s]
        if not segments:
            continue
        if segments[0] == "crate":
            resolved.append(tuple(segments[1:]))
        elif segments[0] in ("super", "self"):
            base = list(module)
            # A file `a/b.rs` is module a::b; `super` is a, `self` is a::b.
            while segments and segments[0] in ("super", "self"):
                if segments.pop(0) == "super":
                    base = base[:-1]
            resolved.append(tuple(base + segments))
    return resolved


def graph():
    mods = modules()
    edges = {}
    for module, path in mods.items():
        targets = set()
        for ref in references(module, path.read_text()):
            # The longest module path that prefixes the reference.
            for n in range(len(ref), 0, -1):
                if ref[:n] in mods and ref[:n] != module:
                    targets.add(ref[:n])
                    break
        # A parent module declaring its children (`mod x;`) is not an import.
        edges[module] = {t for t in targets if t[: len(module)] != module or not module}
        if not module:
            edges[module] = set()  # lib.rs re-exports; it sits above everything
    return mods, edges


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def name(module):
    return "::".join(module) or "lib"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true")
    parser.add_argument("--layers", type=Path)
    args = parser.parse_args()
    mods, edges = graph()
    if args.edges:
        for m in sorted(edges):
            for t in sorted(edges[m]):
                print(f"{name(m)} -> {name(t)}")
    cycles = [c for c in sccs(edges) if len(c) > 1]
    for c in sorted(cycles, key=len, reverse=True):
        print(f"cycle of {len(c)} files: " + ", ".join(sorted(name(m) for m in c)))
    if not cycles:
        print(f"no cycles among {len(mods)} files")
    if args.layers:
        layers = []
        for line in args.layers.read_text().splitlines():
            line = line.split("#", 1)[0].split()
            if line:
                layers.append([tuple(p.split("::")) for p in line])

        def layer_of(module):
            best = None
            for i, paths in enumerate(layers):
                for p in paths:
                    if module[: len(p)] == p and (best is None or len(p) > best[1]):
                        best = (i, len(p))
            return None if best is None else best[0]

        bad = 0
        for m in sorted(edges):
            if not m:
                continue
            lm = layer_of(m)
            if lm is None:
                print(f"not in any layer: {name(m)}")
                bad += 1
                continue
            for t in sorted(edges[m]):
                lt = layer_of(t)
                if lt is not None and lt > lm:
                    print(f"upward import: {name(m)} (layer {lm}) -> {name(t)} (layer {lt})")
                    bad += 1
        print(f"{bad} layering problems")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
