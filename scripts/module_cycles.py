#!/usr/bin/env python3
"""Fails when modules of one crate import each other in a cycle.

For every crate of the workspace, each `crate::`, `super::`, `self::` or child-module path in a
source file is resolved to the module it names (re-exports such as `pub use ports::Ports` are
followed to the module that defines the item). A reference from module A to module B counts as
an arrow between the two children of their closest common ancestor that contain A and B, so
`collect::job -> mesh::Lab` is the arrow `collect -> mesh`. A cycle among the children of one
module (A -> B -> ... -> A) is reported with one reference per arrow. A child using its parent's
items (`super::Lab` in a file that adds `impl Lab` methods) is not a cycle: it is how a type is
split over files. Test modules (`tests`, `props`) are skipped.

usage: scripts/module_cycles.py [CRATE_DIR ...]   (default: every workspace member)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_MODULES = {"tests", "props"}


def members():
    text = (ROOT / "Cargo.toml").read_text()
    block = re.search(r"^members\s*=\s*\[(.*?)\]", text, re.S | re.M).group(1)
    return [ROOT / m for m in re.findall(r'"([^"]+)"', block)]


def crate_files(crate: Path):
    """(module path, file) for every module file of the crate's library or binary."""
    src = crate / "src"
    out = []
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts in (["lib"], ["main"]):
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        if any(p in TEST_MODULES for p in parts) or (crate / "src" / "bin") in f.parents:
            continue
        out.append((tuple(parts), f))
    return out


def strip(text: str) -> str:
    """The text without comments, strings and `#[cfg(test)]` modules."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def use_trees(text: str):
    """Each `use` declaration expanded to its full paths (`a::{b, c::d}` -> a::b, a::c::d)."""
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        yield from expand(compact(m.group(1)))


def compact(tree: str) -> str:
    """A use tree without whitespace; `x as y` becomes `x@y`."""
    return re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))


def expand(tree: str):
    if "{" not in tree:
        yield tree.split("@")[0]
        return
    i = tree.index("{")
    prefix, inner = tree[:i], tree[i + 1 : tree.rindex("}")]
    depth, start = 0, 0
    for k, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            part = inner[start:k]
            start = k + 1
            if part:
                yield from expand(prefix + part)


def analyse(crate: Path):
    files = crate_files(crate)
    modules = {m for m, _ in files}
    texts = {m: strip(f.read_text()) for m, f in files}
    # Re-exports: (module, name) -> module the item comes from.
    reexports = {}
    for m, text in texts.items():
        for m2 in re.finditer(r"\bpub(?:\([a-z]+\))?\s+use\s+([^;]+);", text):
            for path in expand(compact(m2.group(1))):
                segs = path.split("::")
                target = resolve(m, segs[:-1], modules, {}) if len(segs) > 1 else None
                if target is not None:
                    reexports[(m, segs[-1])] = target

    def item_module(segs):
        """The module that defines the item at absolute path `segs`."""
        mod = ()
        for k, s in enumerate(segs):
            if mod + (s,) in modules:
                mod = mod + (s,)
                continue
            seen = set()
            while (mod, s) in reexports and (mod, s) not in seen:
                seen.add((mod, s))
                mod = reexports[(mod, s)]
                rest = segs[k + 1 :]
                if rest and mod + (rest[0],) in modules:
                    return item_module(list(mod) + rest)
            return mod
        return mod

    edges = {}
    for m, text in texts.items():
        paths = list(use_trees(text))
        paths += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
        for p in paths:
            segs = [s for s in p.split("::") if s and s != "*"]
            absolute = resolve(m, segs, modules, texts, full=True)
            if absolute is None:
                continue
            target = item_module(absolute)
            edge = sibling_edge(m, target)
            if edge:
                edges.setdefault(edge, f"{'::'.join(m) or 'crate'} uses {p}")
    return edges


def resolve(module, segs, modules, texts, full=False):
    """Absolute path of `segs` used in `module`, or None when it leaves the crate."""
    if not segs:
        return None
    cur = list(module)
    head = segs[0]
    if head == "crate":
        base, rest = [], segs[1:]
    elif head in ("super", "self"):
        k = 0
        while k < len(segs) and segs[k] in ("super", "self"):
            if segs[k] == "super":
                if not cur:
                    return None
                cur.pop()
            k += 1
        base, rest = cur, segs[k:]
    elif tuple(cur + [head]) in modules:
        base, rest = cur, segs
    else:
        return None
    return base + rest if full else tuple(base + rest) if tuple(base + rest) in modules else None


def sibling_edge(a, b):
    a, b = list(a), list(b)
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    if k == len(a) or k == len(b):
        return None  # the same module, an ancestor or a descendant
    parent = tuple(a[:k])
    return (parent, a[k], b[k])


def cycles(edges):
    graph = {}
    for (parent, x, y) in edges:
        graph.setdefault(parent, {}).setdefault(x, set()).add(y)
    found = []
    for parent, g in graph.items():
        index, low, stack, on, comps = {}, {}, [], set(), []
        counter = [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in g.get(v, ()):
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
                    comps.append(sorted(comp))

        for v in sorted(g):
            if v not in index:
                visit(v)
        for comp in comps:
            found.append((parent, comp))
    return found


def main(argv):
    crates = [Path(a).resolve() for a in argv] or members()
    bad = 0
    for crate in crates:
        if not (crate / "src").is_dir():
            continue
        edges = analyse(crate)
        for parent, comp in cycles(edges):
            bad += 1
            where = "::".join(parent) or "crate root"
            print(f"{crate.relative_to(ROOT)}: modules of {where} in a cycle: {' <-> '.join(comp)}")
            for (p, x, y), why in sorted(edges.items()):
                if p == parent and x in comp and y in comp:
                    print(f"    {x} -> {y}: {why}")
    if bad:
        return 1
    print(f"module cycles: none in {len(crates)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
