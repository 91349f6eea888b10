#!/usr/bin/env python3
"""The shape of certvault's code: lines per crate, the longest functions, and import circles.

    python3 scripts/arch.py report        # figures for a closing note
    python3 scripts/arch.py check         # exits 1 on an import circle between modules, on
                                          # a function in cli/src over CLI_MAX_FN lines, on
                                          # a mod.rs with inline tests (they go in tests.rs
                                          # beside it), or on a library message naming a
                                          # `certvault` command (hints are the CLI's)

A module is a file or folder under a crate's `src/` (`store.rs` or `store/mod.rs` is
`store`); inside a folder, its files are modules too. An edge A -> B is a path in A's
files that names `crate::B` (or `super::B` from a sibling), and `crate::Name` where the
crate root re-exports Name from B. Circles are strongly connected components of more than
one module, among the top-level modules of each crate and among the children of each
folder module. Test files (`tests.rs`, `*_tests.rs`, `mod tests`) are left out: a test may
reach anywhere.

Reads source text only (no rustc), so a name brought in by a glob or a macro is not seen;
the check is a floor, not a proof.
"""

import os
import re
import sys
from collections import defaultdict

CRATES = ["vault", "agent", "cli", "tests"]
CLI_MAX_FN = 80
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text, literals=None):
    """Blanks out comments and string/char literals, keeping line structure. With a list as
    `literals`, the text of each string literal (plain or raw) is appended to it."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            if literals is not None:
                literals.append(text[i + len(m.group(0)):j - len(close)])
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            if literals is not None:
                # A line continued with a backslash reads as one line.
                literals.append(re.sub(r"\\\n\s*", "", text[i + 1:j - 1]))
            out.append('"' + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + '"')
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or (c == "'" and re.match(r"'\\u\{[0-9a-fA-F]+\}'", text[i:i + 12])):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_modules(text):
    """Blanks out `#[cfg(test)] mod tests { ... }` blocks (text already stripped)."""
    while True:
        m = re.search(
            r"#\[cfg\(test\)\]\s*(#\[[^\]]*\]\s*)*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", text
        )
        if not m:
            return text
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        text = text[:m.start()] + re.sub(r"[^\n]", " ", text[m.start():j]) + text[j:]


def is_test_file(path):
    base = os.path.basename(path)
    return base == "tests.rs" or base.endswith("_tests.rs")


def rust_files(src):
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(dirpath, f)


def module_of(src, path):
    """`src/store/sqlite.rs` -> ["store", "sqlite"]; `src/store/mod.rs` -> ["store"]."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return []
    return rel


def use_trees(text):
    """Yields (prefix, tree) for every `use` item."""
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        yield m.group(1)


def expand(tree):
    """Expands a use tree `a::{b, c::{d, e}}` into paths."""
    tree = re.sub(r"\s+", "", tree)

    def go(prefix, t):
        if "{" not in t:
            for part in split_top(t):
                p = part.split(" as ")[0]
                yield prefix + p
            return
        i = t.find("{")
        head = t[:i]
        inner = t[i + 1:t.rfind("}")]
        for part in split_top(inner):
            yield from go(prefix + head, part)

    def split_top(t):
        depth, cur = 0, ""
        for ch in t:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                if cur:
                    yield cur
                cur = ""
            else:
                cur += ch
        if cur:
            yield cur

    yield from go("", tree)


def crate_graph(crate):
    src = os.path.join(ROOT, crate, "src")
    if not os.path.isdir(src):
        return {}, {}
    texts = {}
    for path in rust_files(src):
        if is_test_file(path):
            continue
        with open(path, encoding="utf-8") as f:
            texts[path] = drop_test_modules(strip_comments_and_strings(f.read()))
    # Names the crate root re-exports, and from which module.
    reexport = {}
    for root in ("lib.rs", "main.rs"):
        p = os.path.join(src, root)
        if p in texts:
            for m in re.finditer(r"\bpub\s+use\s+([^;]+);", texts[p]):
                for path in expand(m.group(1)):
                    parts = path.split("::")
                    if parts[0] in ("crate", "self"):
                        parts = parts[1:]
                    if len(parts) >= 2:
                        name = path.split(" as ")[-1].split("::")[-1]
                        reexport[name] = parts[0]
    edges = defaultdict(set)  # module path tuple -> set of module path tuples
    modules = set()
    for path, text in texts.items():
        me = tuple(module_of(src, path))
        if me:
            modules.add(me)
        refs = []
        for tree in use_trees(text):
            refs.extend(expand(tree))
        refs.extend(m.group(0) for m in re.finditer(r"\b(?:crate|super)(?:::" + IDENT + ")+", text))
        for ref in refs:
            parts = [p for p in ref.replace(" ", "").split("::") if p]
            if not parts:
                continue
            if parts[0] == "crate":
                target = parts[1:]
            elif parts[0] == "super":
                base = list(me)
                # `super` inside a mod.rs's file refers to its parent's parent only for files;
                # a file `a/b.rs` is module a::b, its super is a.
                k = 0
                while k < len(parts) and parts[k] == "super":
                    base = base[:-1]
                    k += 1
                target = base + parts[k:]
            else:
                continue
            if not target:
                continue
            if len(target) == 1 and target[0] in reexport:
                target = [reexport[target[0]]]
            edges[me].add(tuple(target))
    return modules, edges


def resolve(modules, target):
    """The longest module path that prefixes target."""
    for k in range(len(target), 0, -1):
        if tuple(target[:k]) in modules:
            return tuple(target[:k])
    return None


def sccs(nodes, adj):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                strong(w)
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return [c for c in out if len(c) > 1]


def circles(crate):
    """Circles among siblings: top-level modules, and the children of each folder module."""
    modules, edges = crate_graph(crate)
    found = []
    parents = {m[:-1] for m in modules}
    for parent in sorted(parents):
        children = {m for m in modules if len(m) == len(parent) + 1 and m[:len(parent)] == parent}
        adj = defaultdict(set)
        for src_mod, targets in edges.items():
            if src_mod[:len(parent)] != parent or len(src_mod) <= len(parent):
                continue
            a = src_mod[:len(parent) + 1]
            for t in targets:
                r = resolve(modules, list(t))
                if r is None or r[:len(parent)] != parent or len(r) <= len(parent):
                    continue
                b = r[:len(parent) + 1]
                if a != b:
                    adj[a].add(b)
        for comp in sccs(children, adj):
            found.append((parent, comp))
    return found


def functions(path):
    """Yields (name, first line, line count) for every fn with a body in a file."""
    with open(path, encoding="utf-8") as f:
        text = drop_test_modules(strip_comments_and_strings(f.read()))
    for m in re.finditer(r"\bfn\s+(" + IDENT + r")", text):
        # Find the body's opening brace: the first `{` at paren/angle depth 0, unless a `;`
        # comes first (a declaration without body).
        j, depth = m.end(), 0
        while j < len(text):
            ch = text[j]
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch == ";" and depth == 0:
                j = -1
                break
            elif ch == "{" and depth == 0:
                break
            j += 1
        if j < 0 or j >= len(text):
            continue
        start = j
        depth = 0
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        first = text.count("\n", 0, m.start()) + 1
        last = text.count("\n", 0, j) + 1
        yield m.group(1), first, last - first + 1


def crate_lines(crate):
    total = 0
    src = os.path.join(ROOT, crate)
    for dirpath, dirs, files in os.walk(src):
        if "target" in dirs:
            dirs.remove("target")
        for f in files:
            if f.endswith(".rs"):
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    total += sum(1 for _ in fh)
    return total


def longest(crate, src_only=True, tests_too=False):
    base = os.path.join(ROOT, crate, "src" if src_only else "")
    out = []
    for path in rust_files(base):
        if not tests_too and is_test_file(path):
            continue
        for name, first, count in functions(path):
            out.append((count, os.path.relpath(path, ROOT), first, name))
    return sorted(out, reverse=True)


def report():
    print("| crate | lines (.rs) | longest function (src, not tests) | import circles |")
    print("|---|---|---|---|")
    for crate in CRATES:
        lg = longest(crate)
        top = f"`{lg[0][3]}` {lg[0][1]}:{lg[0][2]}, {lg[0][0]} lines" if lg else "-"
        circ = circles(crate)
        desc = "; ".join(
            f"{'::'.join(p) or 'crate'}: {len(c)} ({', '.join('::'.join(m) for m in c)})" for p, c in circ
        ) or "none"
        print(f"| {crate} | {crate_lines(crate)} | {top} | {desc} |")
    print()
    allf = []
    for crate in CRATES:
        allf.extend(longest(crate))
    print("ten longest functions of the workspace:")
    for count, path, first, name in sorted(allf, reverse=True)[:10]:
        print(f"  {count:4} {path}:{first} {name}")
    over = [f for f in longest("cli") if f[0] > CLI_MAX_FN]
    print(f"functions in cli/src over {CLI_MAX_FN} lines: {len(over)}")


# Library text that names a `certvault` command on purpose: records, not error hints. A
# deployment's reason and a request's detail are stored and served as they are (`status`,
# its JSON, the agent's logs), with no CLI to add a hint; the writer lock names the command
# that holds it.
RECORD_TEXT = [
    ("agent/src/reconcile/plan/mod.rs", "`certvault renew` or `certvault ca issue` makes a new one"),
    ("agent/src/reconcile/plan/mod.rs", "run `certvault deploy` again or enable --auto-redeploy"),
    ("agent/src/reconcile/apply.rs", "then move listeners with `certvault rotate`"),
    ("agent/src/acm/requests.rs", "request it again (`certvault acm request`)"),
    ("vault/src/store/lock.rs", "`certvault {}` (pid {} on {}, since {})"),
]


def string_literals(text):
    """The string literals of Rust source, outside comments, read by the same lexer that
    blanks them (so `"http://"`, raw strings and char literals such as `'"'` are read right)."""
    found = []
    strip_comments_and_strings(text, found)
    return found


def commands_in_libraries():
    """Library string literals (outside tests) that name a `certvault` command."""
    found = []
    for crate in ["vault", "agent"]:
        for path in rust_files(os.path.join(ROOT, crate, "src")):
            if is_test_file(path):
                continue
            rel = os.path.relpath(path, ROOT)
            with open(path) as f:
                text = f.read()
            cut = re.search(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)
            if cut:
                text = text[: cut.start()]
            for lit in string_literals(text):
                if not re.search(r"`certvault\s", lit):
                    continue
                if any(rel == p and snippet in lit for p, snippet in RECORD_TEXT):
                    continue
                found.append((rel, lit[:100]))
    return found


def inline_tests_in_mod_rs():
    """Folder modules whose mod.rs holds its tests inline (they go in tests.rs beside it)."""
    found = []
    for crate in CRATES:
        for path in rust_files(os.path.join(ROOT, crate, "src")):
            if os.path.basename(path) != "mod.rs":
                continue
            with open(path) as f:
                if re.search(r"\bmod\s+tests\s*\{", strip_comments_and_strings(f.read())):
                    found.append(os.path.relpath(path, ROOT))
    return found


def check():
    bad = False
    for path, lit in commands_in_libraries():
        bad = True
        print(f"{path}: {lit}: names a certvault command; say it as a Remedy and let the CLI word it")
    for path in inline_tests_in_mod_rs():
        bad = True
        print(f"{path}: inline mod tests; a folder module's tests go in tests.rs beside its mod.rs")
    for crate in CRATES:
        for parent, comp in circles(crate):
            bad = True
            where = "::".join(parent) or "the crate root"
            print(f"{crate}: import circle among the modules of {where}: {' -> '.join('::'.join(m) for m in comp)}")
    for count, path, first, name in longest("cli"):
        if count > CLI_MAX_FN:
            bad = True
            print(f"{path}:{first}: fn {name} is {count} lines (the CLI parses, asks and prints; at most {CLI_MAX_FN})")
    if bad:
        sys.exit(1)
    print("no import circles; no function in cli/src over", CLI_MAX_FN, "lines;",
          "no inline tests in a mod.rs; no certvault command named in a library message")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "report"
    {"report": report, "check": check}[cmd]()
