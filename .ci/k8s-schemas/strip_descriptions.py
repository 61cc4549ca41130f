#!/usr/bin/env python3
"""Refresh or check a vendored CRD of .ci/k8s-schemas against the operator's
upstream CRD file (which CI cannot download; fetch it by hand).

The vendored copy is the upstream CRD with every `description` text removed
(documentation only; a *property* named "description" is kept) and nothing
else changed. YAML layout, anchors and aliases may differ: what must match is
the parsed data.

  strip_descriptions.py UPSTREAM.yaml              print the stripped CRD (YAML)
  strip_descriptions.py --check UPSTREAM.yaml VENDORED.yaml
                                                   exit 0 iff VENDORED == stripped UPSTREAM

UPSTREAM may hold several documents (an operator's release manifest): the
CustomResourceDefinition(s) named in VENDORED (or all CRDs when printing) are
compared.
"""

import sys

import yaml


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def crds(path):
    with open(path) as f:
        return {d["metadata"]["name"]: strip(d) for d in yaml.safe_load_all(f)
                if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"}


def first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'vendored' if k in b else 'upstream'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items upstream, {len(b)} vendored"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} upstream, {b!r} vendored"


def main(argv):
    if len(argv) == 2:
        yaml.safe_dump_all(list(crds(argv[1]).values()), sys.stdout, sort_keys=False)
        return 0
    if len(argv) == 4 and argv[1] == "--check":
        upstream, vendored = crds(argv[2]), crds(argv[3])
        status = 0
        for name, doc in vendored.items():
            if name not in upstream:
                print(f"{name}: not in {argv[2]}")
                status = 1
                continue
            diff = first_difference(upstream[name], doc)
            print(f"{name}: {'identical (descriptions aside)' if diff is None else 'DIFFERS at ' + diff}")
            status |= diff is not None
        return status
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
