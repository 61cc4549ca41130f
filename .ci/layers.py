#!/usr/bin/env python3
"""Dependencies point one way (ARCHITECTURE.md, "Crate map" and "Layers").

Checks, from `cargo metadata` and the sources, with the standard library only:
  1. the workspace's crates form no cycle through their normal
     dependencies (a dev-dependency on `testkit` from a crate below it is
     the usual test-support loop, which cargo builds as two crates), and
     each shared crate depends, in any kind, only on the shared crates below
     it: contracts < foundation < messaging < platform;
  2. crates that must stay plain do not depend on what they must not
     (contracts: no actor, HTTP, database or broker crate);
  3. inside every crate, the top-level modules form no import cycle
     (`crate::x` paths, `use crate::{x, ..}` groups included);
  4. inside each service, modules import only layers below them:
     entity < domain < store < actors < routes < startup; `domain` names
     none of actix, actix_web, sea_orm or lapin.
Prints each violation on a line and exits 1 if there is any.
Usage: .ci/layers.py [ROOT]   (default: the repository holding this file)
"""
import json
import pathlib
import re
import subprocess
import sys

SHARED_ORDER = ["contracts", "foundation", "messaging", "platform"]
FORBIDDEN_CRATES = {
    "contracts": {"actix", "actix-web", "sea-orm", "lapin", "tokio", "migration"},
    "foundation": {"lapin", "actix"},
}
SERVICES = ["order", "product", "notification"]
SERVICE_LAYERS = ["entity", "domain", "store", "actors", "routes", "startup"]
PLAIN_DOMAIN = ["actix", "actix_web", "sea_orm", "lapin"]


def cycles(nodes, edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def crate_problems(root):
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout
    )
    members = {p["name"]: p for p in metadata["packages"]}
    edges = {
        name: {d["name"] for d in p["dependencies"] if d["name"] in members and d["name"] != name}
        for name, p in members.items()
    }
    normal = {
        name: {d["name"] for d in p["dependencies"]
               if d["name"] in members and d["name"] != name and d["kind"] != "dev"}
        for name, p in members.items()
    }
    problems = [f"crate cycle: {' <-> '.join(c)}" for c in cycles(members, normal)]
    for name in SHARED_ORDER:
        if name not in members:
            problems.append(f"shared crate {name} is missing from the workspace")
            continue
        allowed = set(SHARED_ORDER[: SHARED_ORDER.index(name)])
        for dep in sorted(edges[name] & set(SHARED_ORDER) - allowed):
            problems.append(f"crate {name} depends on {dep}, which sits above it (order: {' < '.join(SHARED_ORDER)})")
    for name, forbidden in FORBIDDEN_CRATES.items():
        if name not in members:
            continue
        deps = {d["name"] for d in members[name]["dependencies"] if d["kind"] is None}
        for dep in sorted(deps & forbidden):
            problems.append(f"crate {name} depends on {dep}, which it must not")
    return problems, members


def code_of(path):
    """The source without comments, so that prose does not count as an import."""
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_graph(src):
    modules = {p.stem for p in src.iterdir() if p.name not in ("main.rs", "lib.rs", "bin")}
    edges, files = {}, {}
    for path in sorted(src.rglob("*.rs")):
        top = pathlib.Path(path.relative_to(src).parts[0]).stem
        if top not in modules:
            continue
        code = code_of(path)
        files.setdefault(top, []).append((path, code))
        named = set(re.findall(r"\bcrate::(\w+)", code))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
            named |= set(re.findall(r"(?:^|,)\s*(\w+)", group))
        edges.setdefault(top, set()).update(m for m in named if m in modules and m != top)
    return modules, edges, files


def module_problems(root, members):
    problems = []
    for name, package in sorted(members.items()):
        src = pathlib.Path(package["manifest_path"]).parent / "src"
        if not src.is_dir():
            continue
        modules, edges, files = module_graph(src)
        rel = src.relative_to(root)
        for cycle in cycles(modules, edges):
            problems.append(f"{rel}: module cycle: {' <-> '.join(cycle)}")
        if name not in SERVICES:
            continue
        for module, targets in sorted(edges.items()):
            if module not in SERVICE_LAYERS:
                continue
            rank = SERVICE_LAYERS.index(module)
            for target in sorted(targets):
                if target in SERVICE_LAYERS and SERVICE_LAYERS.index(target) > rank:
                    problems.append(f"{rel}: {module} imports {target}, a layer above it ({' < '.join(SERVICE_LAYERS)})")
        for path, code in files.get("domain", []):
            for crate in PLAIN_DOMAIN:
                if re.search(rf"\b{crate}::", code):
                    problems.append(f"{path.relative_to(root)}: the domain names {crate}")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    problems, members = crate_problems(root)
    problems += module_problems(root, members)
    for problem in problems:
        print(problem)
    print(f"layers: {len(members)} crates checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
