#!/usr/bin/env python3
"""Offline schema validation of the Kubernetes manifests (Kustomize layout).

Usage (normally through .ci/validate-k8s, which installs the dependencies):
  validate_k8s.py [--kubernetes-version X.Y.Z] [DIR]   default DIR: deploy/k8s
  validate_k8s.py --self-test [-v]       (-v: show the output of every case)

What it checks, all offline:
  1. DIR/kustomization.yaml lists exactly the manifest files present: every
     *.yaml / *.yml under DIR is referenced by a kustomization (resources,
     patches, generators, components, crds, ...), nothing it references is
     missing, no resource is listed twice, and its own top-level keys are
     Kustomization fields (a typo such as `resource:` would be ignored by old
     kustomize versions and silently deploy nothing).
  2. Every document of every resource file is an object with apiVersion, kind
     and metadata.name, and no two resources have the same
     apiVersion/kind/namespace/name.
  3. Every resource validates against its JSON schema, STRICTLY (an unknown
     field is an error, as with `kubectl apply --validate=strict`):
       - built-in kinds: the Kubernetes OpenAPI schemas shipped in the PyPI
         package kubernetes-validate (its "-local-strict" variant, which closes
         every object with additionalProperties: false);
       - custom resources: the openAPIV3Schema of the operator's own CRD,
         vendored in .ci/k8s-schemas/ (see the header of each file for its
         exact version and provenance), converted the way the API server
         reads a structural schema: objects with `properties` are closed
         unless x-kubernetes-preserve-unknown-fields, `nullable` admits null,
         and the CR's metadata is checked against the built-in ObjectMeta.
     A kind that has no schema is an error, not a skip.
     Not checked (the API server would): CEL rules (x-kubernetes-validations),
     formats such as int32 ranges, defaulting, admission webhooks.

Every problem is printed on one line naming the file, the document, the kind
and name, and the offending field path, e.g.
  ERROR deploy/k8s/rabbitmq.yaml: RabbitmqCluster "rabbitmq" (rabbitmq.com/v1beta1): spec.replicass: unknown field (did you mean "replicas"?)
Exits 0 when all is valid, 1 when anything is not, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml
from referencing import Registry, Resource

REPO_ROOT = Path(__file__).resolve().parent.parent
CRD_DIR = Path(__file__).resolve().parent / "k8s-schemas"
DEFAULT_DIR = REPO_ROOT / "deploy" / "k8s"
# The Kubernetes version whose built-in schemas the manifests must satisfy.
# kubernetes-validate ships 1.25 .. 1.37; CloudNativePG 1.27 supports 1.30-1.33.
DEFAULT_KUBERNETES_VERSION = "1.33.0"

DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
OBJECT_META_REF = DEFINITIONS_URI + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Top-level fields of a Kustomization (kustomize v5, including deprecated ones).
KUSTOMIZATION_FIELDS = {
    "apiVersion", "kind", "metadata", "resources", "bases", "components", "crds",
    "namespace", "namePrefix", "nameSuffix", "commonLabels", "labels",
    "commonAnnotations", "images", "replicas", "patches", "patchesStrategicMerge",
    "patchesJson6902", "configMapGenerator", "secretGenerator", "generatorOptions",
    "generators", "transformers", "validators", "replacements", "vars",
    "configurations", "openapi", "helmCharts", "helmGlobals", "helmChartInflationGenerator",
    "buildMetadata", "sortOptions", "inventory",
}


# --------------------------------------------------------------------------
# reporting


@dataclass
class Report:
    root: Path
    errors: list[str] = field(default_factory=list)
    resources: int = 0
    files: int = 0

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    def error(self, path: Path | None, message: str) -> None:
        where = f"{self.rel(path)}: " if path is not None else ""
        self.errors.append(f"ERROR {where}{message}")


def field_path(parts) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document root)"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(err: jsonschema.ValidationError) -> Iterator[str]:
    """One line per problem: 'field.path: what is wrong'."""
    # oneOf/anyOf (int-or-string and friends): report the closest branch.
    if err.validator in ("oneOf", "anyOf") and err.context:
        deeper = [e for e in err.context if len(e.absolute_path) > len(err.absolute_path)]
        if deeper:
            yield from describe_error(jsonschema.exceptions.best_match(deeper))
            return
        types = sorted({t for e in err.context if e.validator == "type"
                        for t in ([e.validator_value] if isinstance(e.validator_value, str)
                                  else e.validator_value) if t != "null"})
        if types:
            yield (f"{field_path(err.absolute_path)}: wrong type: expected {' or '.join(types)}, "
                   f"got {json_type(err.instance)} {short(err.instance)}")
            return
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and err.validator_value is False:
        known = set(err.schema.get("properties", {}))
        patterns = [re.compile(p) for p in err.schema.get("patternProperties", {})]
        extras = [k for k in err.instance
                  if k not in known and not any(p.search(k) for p in patterns)]
        for key in extras:
            hint = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            suffix = f' (did you mean "{hint[0]}"?)' if hint else ""
            yield f"{field_path(path + [key])}: unknown field{suffix}"
        return
    if err.validator == "required":
        match = re.match(r"'(.*)' is a required property", err.message)
        missing = match.group(1) if match else err.message
        yield f"{field_path(path + [missing])}: missing required field"
        return
    if err.validator == "type":
        expected = err.validator_value
        expected = [expected] if isinstance(expected, str) else [t for t in expected if t != "null"]
        yield (f"{field_path(path)}: wrong type: expected {' or '.join(expected)}, "
               f"got {json_type(err.instance)} {short(err.instance)}")
        return
    if err.validator == "enum":
        allowed = [v for v in err.validator_value if v is not None]
        yield f"{field_path(path)}: {short(err.instance)} is not one of {short(allowed, 200)}"
        return
    message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
    yield f"{field_path(path)}: {message}"


# --------------------------------------------------------------------------
# schemas


def strict_schema_dir(kubernetes_version: str) -> Path:
    import kubernetes_validate  # noqa: PLC0415 (imported here: only its data is used)

    base = Path(kubernetes_validate.__file__).resolve().parent / "kubernetes-json-schema"
    want = tuple(int(x) for x in kubernetes_version.lstrip("v").split(".")[:2])
    available = sorted(
        (tuple(int(x) for x in m.group(1).split(".")[:2]), p)
        for p in base.iterdir()
        if (m := re.fullmatch(r"v(\d+\.\d+\.\d+)-local-strict", p.name))
    )
    chosen = [p for v, p in available if v <= want]
    if not chosen:
        raise SystemExit(f"validate-k8s: kubernetes-validate has no schemas for Kubernetes {kubernetes_version} "
                         f"(it has {available[0][1].name} .. {available[-1][1].name})")
    if available[-1][0] < want:
        raise SystemExit(f"validate-k8s: kubernetes-validate's newest schemas are {available[-1][1].name}, "
                         f"older than the requested Kubernetes {kubernetes_version}")
    return chosen[-1]


def openapi_to_jsonschema(node: Any) -> Any:
    """A CRD's structural OpenAPI v3 schema as a strict JSON Schema."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions", "$defs"):
            out[key] = {name: openapi_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = ([openapi_to_jsonschema(s) for s in value] if isinstance(value, list)
                        else openapi_to_jsonschema(value))
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [openapi_to_jsonschema(s) for s in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-embedded-resource") and "properties" in out:
        for implicit in ("apiVersion", "kind"):
            out["properties"].setdefault(implicit, {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    if ("properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


@dataclass
class Schemas:
    kubernetes_version: str
    core_dir: Path
    registry: Registry
    crds: dict[tuple[str, str], tuple[dict, str]]  # (apiVersion, kind) -> (schema, source file)

    @classmethod
    def load(cls, kubernetes_version: str, crd_dir: Path = CRD_DIR) -> "Schemas":
        core_dir = strict_schema_dir(kubernetes_version)
        definitions = json.loads((core_dir / "_definitions.json").read_text())
        registry = Registry().with_resource(DEFINITIONS_URI, Resource.from_contents(definitions))
        crds: dict[tuple[str, str], tuple[dict, str]] = {}
        for path in sorted(crd_dir.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    if not version.get("served", True) or "schema" not in version:
                        continue
                    schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
                    schema.setdefault("properties", {})["metadata"] = {"$ref": OBJECT_META_REF}
                    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    crds[key] = (schema, path.name)
        return cls(kubernetes_version, core_dir, registry, crds)

    def lookup(self, api_version: str, kind: str) -> tuple[dict, str] | None:
        if (api_version, kind) in self.crds:
            return self.crds[(api_version, kind)]
        # kubernetes-validate's naming: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        path = self.core_dir / f"{kind.lower()}-{group_version}.json"
        if not path.is_file():
            return None
        schema = json.loads(path.read_text())
        gvks = schema.get("x-kubernetes-group-version-kind", [])
        group, _, version = api_version.rpartition("/")
        if not any(g.get("group", "") == group and g.get("version") == version and g.get("kind") == kind
                   for g in gvks):
            return None
        return schema, f"kubernetes-validate {self.core_dir.name}/{path.name}"

    def validator(self, schema: dict) -> jsonschema.protocols.Validator:
        return jsonschema.Draft202012Validator(schema, registry=self.registry)


# --------------------------------------------------------------------------
# kustomization


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@", "gitlab.com/"))


def generator_files(entries) -> Iterator[str]:
    """Paths named by configMapGenerator/secretGenerator entries."""
    for gen in entries or []:
        if not isinstance(gen, dict):
            continue
        for spec in list(gen.get("files") or []) + list(gen.get("envs") or []) + (
                [gen["env"]] if gen.get("env") else []):
            spec = str(spec)
            yield spec.split("=", 1)[1] if "=" in spec else spec


def walk_kustomization(kfile: Path, report: Report, resources: list[Path], used: set[Path],
                       seen: set[Path]) -> None:
    if kfile in seen:
        return
    seen.add(kfile)
    used.add(kfile.resolve())
    base = kfile.parent
    try:
        data = yaml.safe_load(kfile.read_text()) or {}
    except yaml.YAMLError as exc:
        report.error(kfile, f"not valid YAML: {exc}")
        return
    if not isinstance(data, dict):
        report.error(kfile, "a kustomization must be a mapping")
        return
    for key in data:
        if key not in KUSTOMIZATION_FIELDS:
            hint = difflib.get_close_matches(str(key), sorted(KUSTOMIZATION_FIELDS), n=1)
            report.error(kfile, f"{key}: unknown Kustomization field"
                         + (f' (did you mean "{hint[0]}"?)' if hint else ""))
    if data.get("apiVersion", "kustomize.config.k8s.io/v1beta1") not in (
            "kustomize.config.k8s.io/v1beta1", "kustomize.config.k8s.io/v1alpha1"):
        report.error(kfile, f"apiVersion: {data['apiVersion']!r} is not a Kustomization apiVersion")
    if data.get("kind", "Kustomization") not in ("Kustomization", "Component"):
        report.error(kfile, f"kind: {data['kind']!r} is not Kustomization")

    def entries(key: str) -> list:
        value = data.get(key) or []
        if not isinstance(value, list):
            report.error(kfile, f"{key}: must be a list")
            return []
        return value

    listed: set[str] = set()
    for key in ("resources", "bases", "components"):
        for entry in entries(key):
            entry = str(entry)
            if is_remote(entry):
                report.error(kfile, f"{key}: {entry}: remote bases cannot be validated offline")
                continue
            if entry in listed:
                report.error(kfile, f"{key}: {entry} is listed twice")
            listed.add(entry)
            target = (base / entry)
            if target.is_dir():
                sub = find_kustomization(target)
                if sub is None:
                    report.error(kfile, f"{key}: {entry} is a directory without a kustomization.yaml")
                else:
                    walk_kustomization(sub, report, resources, used, seen)
            elif target.is_file():
                resources.append(target)
                used.add(target.resolve())
            else:
                report.error(kfile, f"{key}: {entry} is listed but does not exist")

    other_files: list[str] = [str(e) for e in entries("crds")]
    other_files += [str(e) for e in entries("patchesStrategicMerge") if not str(e).lstrip().startswith(("apiVersion", "{"))]
    for key in ("patches", "patchesJson6902", "replacements"):
        other_files += [str(e["path"]) for e in entries(key) if isinstance(e, dict) and e.get("path")]
    for key in ("configMapGenerator", "secretGenerator"):
        other_files += list(generator_files(entries(key)))
    for key in ("generators", "transformers", "validators", "configurations"):
        other_files += [str(e) for e in entries(key) if isinstance(e, str) and "\n" not in e]
    for entry in other_files:
        target = base / entry
        if not target.exists():
            report.error(kfile, f"{entry} is referenced but does not exist")
        else:
            used.add(target.resolve())
    # crds: are applied as resources too, so validate them.
    for entry in entries("crds"):
        if (base / str(entry)).is_file():
            resources.append(base / str(entry))


# --------------------------------------------------------------------------
# validation


def validate_dir(directory: Path, schemas: Schemas, report: Report) -> None:
    kfile = find_kustomization(directory)
    if kfile is None:
        report.error(directory, "no kustomization.yaml")
        return
    resources: list[Path] = []
    used: set[Path] = set()
    walk_kustomization(kfile, report, resources, used, set())

    present = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
                     and not any(part.startswith(".") for part in p.relative_to(directory).parts))
    for path in present:
        if path.resolve() not in used:
            report.error(path, f"not listed in {report.rel(kfile)} (add it to resources:, or delete it)")

    ids: dict[tuple, str] = {}
    for path in resources:
        report.files += 1
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            report.error(path, f"not valid YAML: {exc}")
            continue
        docs = [(i, d) for i, d in enumerate(docs, 1) if d is not None]
        if not docs:
            report.error(path, "contains no Kubernetes object")
        multi = len(docs) > 1
        for index, doc in docs:
            where = f"document {index}: " if multi else ""
            if not isinstance(doc, dict):
                report.error(path, f"{where}not a Kubernetes object (a {json_type(doc)})")
                continue
            api_version, kind = doc.get("apiVersion"), doc.get("kind")
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            name = meta.get("name")
            label = f'{where}{kind or "?"} "{name or "?"}" ({api_version or "no apiVersion"})'
            if not isinstance(api_version, str) or not isinstance(kind, str):
                report.error(path, f"{label}: apiVersion and kind are required strings")
                continue
            report.resources += 1
            if not name and not meta.get("generateName"):
                report.error(path, f"{label}: metadata.name: missing required field")
            key = (api_version.split("/")[0] if "/" in api_version else "", kind,
                   meta.get("namespace"), name)
            if name and key in ids:
                report.error(path, f"{label}: same kind, namespace and name as in {ids[key]}")
            ids.setdefault(key, report.rel(path))
            found = schemas.lookup(api_version, kind)
            if found is None:
                report.error(path, f"{label}: no schema for kind {kind} in apiVersion {api_version} "
                             f"(Kubernetes {schemas.kubernetes_version} built-ins or the CRDs in "
                             f"{report.rel(CRD_DIR)}): unknown kind or apiVersion")
                continue
            schema, _source = found
            errors = sorted(schemas.validator(schema).iter_errors(doc),
                            key=lambda e: [str(p) for p in e.absolute_path])
            for err in errors:
                for line in describe_error(err):
                    report.error(path, f"{label}: {line}")


def run(directory: Path, kubernetes_version: str, out=sys.stdout) -> int:
    schemas = Schemas.load(kubernetes_version)
    report = Report(directory)
    validate_dir(directory, schemas, report)
    for line in report.errors:
        print(line, file=out)
    crd_kinds = ", ".join(sorted({k for _, k in schemas.crds}))
    if report.errors:
        print(f"validate-k8s: FAILED: {len(report.errors)} problem(s) in {report.rel(directory)} "
              f"({report.resources} resources in {report.files} files; Kubernetes "
              f"{schemas.kubernetes_version} schemas + CRDs: {crd_kinds})", file=out)
        return 1
    print(f"validate-k8s: OK: {report.resources} resources in {report.files} files of "
          f"{report.rel(directory)} match their schemas (Kubernetes {schemas.kubernetes_version}, "
          f"strict; CRDs: {crd_kinds}); kustomization lists exactly the files present", file=out)
    return 0


# --------------------------------------------------------------------------
# self-test: the validator must accept valid manifests and reject typos


GOOD = {
    "kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
resources:
  - namespace.yaml
  - rabbitmq.yaml
  - postgres.yaml
  - order.yaml
""",
    "namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    "rabbitmq.yaml": """\
apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata:
  name: rabbitmq
  labels: {app.kubernetes.io/name: rabbitmq}
spec:
  replicas: 3
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {memory: 1Gi}
  persistence:
    storage: 10Gi
  rabbitmq:
    additionalConfig: |
      cluster_partition_handling = pause_minority
""",
    "postgres.yaml": """\
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: postgres
spec:
  instances: 3
  storage:
    size: 10Gi
  bootstrap:
    initdb:
      database: shop
      owner: shop
  postgresql:
    parameters:
      max_connections: "200"
""",
    "order.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: order
spec:
  replicas: 2
  selector:
    matchLabels: {app: order}
  template:
    metadata:
      labels: {app: order}
    spec:
      containers:
        - name: order
          image: ecommerce/order:latest
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /ready, port: 8080}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: order
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: order}
  minReplicas: 2
  maxReplicas: 6
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 70}
""",
}

# (description, file, old text, new text, substrings the output must contain)
BAD = [
    ("typo in a RabbitmqCluster field", "rabbitmq.yaml", "  replicas: 3", "  replicass: 3",
     ["rabbitmq.yaml", 'RabbitmqCluster "rabbitmq"', "spec.replicass: unknown field", '"replicas"']),
    ("wrong type in a RabbitmqCluster field", "rabbitmq.yaml", "  replicas: 3", "  replicas: three",
     ["RabbitmqCluster", "spec.replicas: wrong type: expected integer"]),
    ("typo in a CNPG Cluster field", "postgres.yaml", "  instances: 3", "  instancess: 3",
     ["postgres.yaml", 'Cluster "postgres"', "spec.instancess: unknown field", '"instances"']),
    ("typo in a nested CNPG Cluster field", "postgres.yaml", "    size: 10Gi", "    sise: 10Gi",
     ["spec.storage.sise: unknown field"]),
    ("missing required CNPG field", "postgres.yaml", "  instances: 3\n", "  instances: 3\n  backup:\n    barmanObjectStore:\n      serverName: postgres\n",
     ["spec.backup.barmanObjectStore.destinationPath: missing required field"]),
    ("wrong enum value in a CNPG field", "postgres.yaml", "  instances: 3\n", "  instances: 3\n  primaryUpdateStrategy: automatic\n",
     ["spec.primaryUpdateStrategy", "is not one of"]),
    ("typo in CR metadata", "postgres.yaml", "  name: postgres\n", "  name: postgres\n  lables: {a: b}\n",
     ["metadata.lables: unknown field", '"labels"']),
    ("typo in a Deployment field", "order.yaml", "  replicas: 2", "  replicass: 2",
     ["order.yaml", 'Deployment "order"', "spec.replicass: unknown field", '"replicas"']),
    ("wrong type in a container", "order.yaml", "containerPort: 8080", "containerPort: [8080]",
     ["spec.template.spec.containers[0].ports[0].containerPort: wrong type"]),
    ("missing required container name", "order.yaml", "        - name: order\n          image:", "        - image:",
     ["spec.template.spec.containers[0].name: missing required field"]),
    ("typo in an HPA field", "order.yaml", "  maxReplicas: 6", "  maxReplica: 6",
     ['HorizontalPodAutoscaler "order"', "spec.maxReplica: unknown field", "spec.maxReplicas: missing required field"]),
    ("unknown kind", "namespace.yaml", "kind: Namespace", "kind: Namespaces",
     ["namespace.yaml", "no schema for kind Namespaces"]),
    ("file not listed in kustomization", "kustomization.yaml", "  - order.yaml\n", "",
     ["order.yaml: not listed in"]),
    ("file listed but missing", "kustomization.yaml", "  - order.yaml\n", "  - order.yaml\n  - pdb.yaml\n",
     ["resources: pdb.yaml is listed but does not exist"]),
    ("file listed twice", "kustomization.yaml", "  - order.yaml\n", "  - order.yaml\n  - order.yaml\n",
     ["order.yaml is listed twice"]),
    ("typo in a kustomization field", "kustomization.yaml", "resources:", "resource:",
     ["resource: unknown Kustomization field"]),
]


def self_test(kubernetes_version: str, verbose: bool = False) -> int:
    import io  # noqa: PLC0415

    failures = 0

    def check(name: str, files: dict[str, str], expect_ok: bool, needles: list[str]) -> None:
        nonlocal failures
        with tempfile.TemporaryDirectory() as tmp:
            for fname, text in files.items():
                (Path(tmp) / fname).write_text(text)
            out = io.StringIO()
            rc = run(Path(tmp), kubernetes_version, out)
        text = out.getvalue()
        missing = [n for n in needles if n not in text]
        ok = (rc == 0) == expect_ok and not missing
        print(f"{'ok  ' if ok else 'FAIL'} self-test: {name}")
        if not ok:
            failures += 1
            print(f"    exit code {rc}, expected {'0' if expect_ok else 'non-zero'}; missing in output: {missing}")
        if not ok or verbose:
            for line in text.splitlines():
                print(f"    | {line}")

    # The vendored CRDs must themselves be valid CustomResourceDefinitions.
    schemas = Schemas.load(kubernetes_version)
    crd_schema, _ = schemas.lookup("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    for path in sorted(CRD_DIR.glob("*.yaml")):
        doc = json.loads(json.dumps(yaml.safe_load(path.read_text())))  # expand YAML aliases
        problems = [line for err in schemas.validator(crd_schema).iter_errors(doc) for line in describe_error(err)]
        print(f"{'ok  ' if not problems else 'FAIL'} self-test: {path.name} is a valid CustomResourceDefinition")
        for line in problems:
            print(f"    | {line}")
        failures += bool(problems)

    check("valid Namespace, RabbitmqCluster, CNPG Cluster, Deployment, HPA pass", GOOD, True, ["validate-k8s: OK"])
    for name, fname, old, new, needles in BAD:
        if old not in GOOD[fname]:
            raise SystemExit(f"self-test case {name!r}: {old!r} not in {fname}")
        files = dict(GOOD, **{fname: GOOD[fname].replace(old, new, 1)})
        check(name + " fails", files, False, needles)
    extra = dict(GOOD, **{"stray.yaml": GOOD["namespace.yaml"]})
    check("file present but not listed fails", extra, False, ["stray.yaml: not listed in"])
    if failures:
        print(f"validate-k8s self-test: FAILED ({failures} case(s))")
        return 1
    print(f"validate-k8s self-test: OK ({len(BAD) + 2} cases, {len(list(CRD_DIR.glob('*.yaml')))} CRDs)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", help="manifest directory (default: deploy/k8s)")
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION,
                        help=f"built-in schemas of this Kubernetes version (default {DEFAULT_KUBERNETES_VERSION})")
    parser.add_argument("--self-test", action="store_true",
                        help="check that valid samples pass and typos fail")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="with --self-test: show the validator's output for every case")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test(args.kubernetes_version, args.verbose)
    if args.directory is None:
        directory = DEFAULT_DIR
        if not directory.is_dir():
            print(f"validate-k8s: {directory.relative_to(REPO_ROOT)} does not exist (yet): nothing to validate")
            return 0
    else:
        directory = Path(args.directory)
        if not directory.is_dir():
            print(f"validate-k8s: {directory} is not a directory", file=sys.stderr)
            return 2
    return run(directory, args.kubernetes_version)


if __name__ == "__main__":
    sys.exit(main())
