#!/usr/bin/env python3
"""Finds import loops between modules inside each crate of the workspace.

A module's imports are the `crate::a::b…` and `super::…` paths in its file,
resolved to the longest prefix that names a module. References between a
module and its ancestors are left out (a parent re-exporting its children,
a child using its parent's types is how Rust module trees work); what is
reported is a cycle among the rest, e.g. `reader::slot -> reader::exchange
-> reader::slot`. Test modules (`#[cfg(test)] mod tests { … }`) are skipped.
Prints each loop and exits 1 if there is any; else "module loops: 1 passed,
0 failed".
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CRATES = ["src", "protocols/src", "sim/src", "usbip/src", "card/src", "ifd/src", "trace/src", "cli/src"]


def module_files(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main") and len(rel) == 1:
                rel = []
            elif rel[-1] == "mod":
                rel = rel[:-1]
            mods[tuple(rel)] = os.path.join(dirpath, f)
    return mods


def strip_tests(text):
    """The file without its `#[cfg(test)] mod NAME { … }` blocks."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def imports(mod, text, mods):
    """The modules `mod` refers to (longest module prefix of each path)."""
    found = set()
    for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
        base = () if m.group(1) == "crate" else mod[:-1]
        parts = m.group(2).split("::")[1:]
        if m.group(1) == "super":
            # super::super::x
            while parts and parts[0] == "super":
                base, parts = base[:-1], parts[1:]
        path = base
        for p in parts:
            if path + (p,) in mods:
                path = path + (p,)
            else:
                break
        found.add(path)
    # `use super::{a, b}` / `use crate::x::{a, b}` groups: a module per name.
    for m in re.finditer(r"\b(crate|super)((?:::\w+)*)::\{([^}]*)\}", text):
        base = () if m.group(1) == "crate" else mod[:-1]
        prefix = [p for p in m.group(2).split("::")[1:] if p]
        for name in re.findall(r"\b\w+\b", m.group(3)):
            path = base + tuple(prefix) + (name,)
            if path in mods:
                found.add(path)
    return found


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


failed = 0
for crate in CRATES:
    src = os.path.join(ROOT, crate)
    mods = module_files(src)
    graph = {}
    for mod, path in mods.items():
        text = strip_tests(open(path, encoding="utf-8").read())
        # Comments (doc links included) are not imports.
        text = re.sub(r"//[^\n]*", "", text)
        graph[mod] = {t for t in imports(mod, text, mods) if t != mod and not related(mod, t)}
    for comp in cycles(graph):
        failed += 1
        names = sorted("::".join(m) or "(root)" for m in comp)
        edges = sorted(
            f"{'::'.join(a)} -> {'::'.join(b)}" for a in comp for b in graph[a] if b in comp
        )
        print(f"{crate}: import loop among {', '.join(names)}: {'; '.join(edges)}")
print(f"module loops: {0 if failed else 1} passed, {1 if failed else 0} failed")
sys.exit(1 if failed else 0)
