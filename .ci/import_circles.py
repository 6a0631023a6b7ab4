#!/usr/bin/env python3
"""Fail when source files of gateway/src import each other in a circle.

A file depends on another when its code (not its comments, not its test
module) names a path into it: `crate::a::b` or `super::b`, resolved to the
longest module prefix that is a file. Circles are the strongly connected
components of that graph with more than one file (Tarjan). ARCHITECTURE.md
promises none: each phase of the request path can be read, and tested,
from the files it names.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway", "src")


def module_of(path):
    parts = path[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def code_of(src):
    cut = src.find("#[cfg(test)]\nmod tests")
    if cut >= 0:
        src = src[:cut]
    return "\n".join(l for l in src.split("\n") if not l.strip().startswith("//"))


def main():
    files = {}
    for d, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.relpath(os.path.join(d, n), ROOT)
                with open(os.path.join(ROOT, p)) as f:
                    files[p] = f.read()
    modules = {tuple(module_of(p)): p for p in files}

    def file_of(parts):
        for n in range(len(parts), 0, -1):
            if tuple(parts[:n]) in modules:
                return modules[tuple(parts[:n])]
        return None

    graph = {}
    for p, src in files.items():
        me = module_of(p)
        deps = set()
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", code_of(src)):
            segs = m.group(2).strip(":").split("::")
            parts = segs if m.group(1) == "crate" else me[:-1] + segs
            while "super" in parts:
                k = parts.index("super")
                parts = parts[: k - 1] + parts[k + 1 :]
            target = file_of(parts)
            if target and target != p:
                deps.add(target)
        graph[p] = deps

    index, low, stack, on, circles = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    for comp in circles:
        print("import circle between gateway/src files:")
        for v in comp:
            print(f"  {v} -> {', '.join(sorted(w for w in graph[v] if w in comp))}")
    if circles:
        sys.exit(1)
    print(f"no import circle among {len(files)} files")


if __name__ == "__main__":
    main()
