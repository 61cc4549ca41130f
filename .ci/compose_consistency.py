#!/usr/bin/env python3
"""Cross-file consistency of docker-compose.yml, the Dockerfile and the Cargo
manifests: the things that `docker-compose config`, the Compose schema and
hadolint cannot see, each of which would only show up once the stack runs.

Usage: compose_consistency.py NORMALIZED_COMPOSE_YAML
  where the file is the output of `docker-compose -f docker-compose.yml config`
  (Debian's docker-compose 1.29 has no JSON output, hence PyYAML).

For every service that runs the image built from this repository:
  - its command names a binary of a workspace member ([[bin]] or
    src/bin/), and the Dockerfile builds that binary and copies it into the
    image;
  - HTTP_ADDR and ADMIN_ADDR listen on all interfaces, on different ports;
    its healthcheck asks for GET /ready (healthy = ready to take work:
    database and broker reachable) on the ADMIN_ADDR port;
  - it publishes no host port of its own (a second replica, `--scale`, could
    not bind it); the nginx edge publishes that port instead, on the same
    number, and proxies it to the service by name through Docker's DNS
    resolver, re-resolved (a variable) so that every replica gets requests;
  - it has CPU and memory limits;
  - every postgres:// or amqp:// URL in its environment names a service it
    depends on with `condition: service_healthy`, and the credentials and
    database that service is configured with (for RabbitMQ, not its default
    guest account); a server's administrator account only in the one-shot
    steps: each long-running service logs in with its own account
    ecommerce_<service>, whose password the step that creates it is given
    (`migration up`: <SERVICE>_DATABASE_PASSWORD, `topology`:
    <SERVICE>_AMQP_PASSWORD);
  - stop_grace_period leaves time beyond its own shutdown (HTTP 5 s, then
    draining deliveries 5 s), which Docker's default 10 s does not.
One-shot services of that image (those others wait for with `condition:
service_completed_successfully`) are steps, not servers: exactly one runs
`migration up`, exactly one `topology`, which `migrate` waits for, and
every service whose environment has a DATABASE_URL waits for migrate that
way (services never migrate nor declare; they wait for both).
For every service: each published port is bound to 127.0.0.1 only; each image
it pulls is pinned to a version (no `latest`, no bare major).
The tests' default account (testkit::COMPOSE_USER/PASSWORD) is the one
PostgreSQL and RabbitMQ are set up with from .env.example, and PostgreSQL,
the AMQP port and the management API are published for them.
Prometheus (observability profile) scrapes every service on its admin port;
the edge never routes to an admin port.
Grafana (observability profile; no Debian package, so CI does not run it):
its provisioned data source is the Prometheus service, its dashboard
provider and home dashboard are mounted files, every panel queries a
provisioned data source.
For every binary the Dockerfile copies out of target/release: it is a [[bin]]
of a workspace member, a cargo build command in the Dockerfile builds it with
its required-features, and every feature the Dockerfile asks for exists.

Prints one PASS/FAIL line per check; exits 1 if any failed.
Needs Python >= 3.11 (tomllib) and PyYAML.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
failures = 0


def report(ok: bool, message: str) -> None:
    global failures
    if not ok:
        failures += 1
    print(f"  {'PASS' if ok else 'FAIL'} {message}")


# --- Cargo ------------------------------------------------------------------


@dataclass
class Bin:
    name: str
    package: str
    crate_dir: str  # relative to ROOT
    required_features: list[str]


@dataclass
class Package:
    name: str
    crate_dir: str
    features: set[str]
    # [features] as written: what each feature turns on (for `default`).
    feature_table: dict[str, list[str]] = field(default_factory=dict)
    bins: dict[str, Bin] = field(default_factory=dict)


def load_workspace() -> dict[str, Package]:
    """Workspace members by package name, with their binaries and features."""
    root = tomllib.loads((ROOT / "Cargo.toml").read_text())
    packages: dict[str, Package] = {}
    for pattern in root.get("workspace", {}).get("members", []):
        for crate in sorted(ROOT.glob(pattern)):
            manifest_path = crate / "Cargo.toml"
            if not manifest_path.is_file():
                continue
            manifest = tomllib.loads(manifest_path.read_text())
            name = manifest["package"]["name"]
            rel = crate.relative_to(ROOT).as_posix()
            features = set(manifest.get("features", {}))
            # Optional dependencies are features too, unless only used as dep:NAME.
            explicit_deps = {
                v[4:]
                for values in manifest.get("features", {}).values()
                for v in values
                if v.startswith("dep:")
            }
            for table in ("dependencies", "build-dependencies"):
                for dep, spec in manifest.get(table, {}).items():
                    if isinstance(spec, dict) and spec.get("optional") and dep not in explicit_deps:
                        features.add(dep)
            pkg = Package(name, rel, features, dict(manifest.get("features", {})))
            declared = manifest.get("bin", [])
            for b in declared:
                pkg.bins[b["name"]] = Bin(b["name"], name, rel, list(b.get("required-features", [])))
            autobins = manifest["package"].get("autobins", True)
            main_claimed = any(b.get("path") == "src/main.rs" for b in declared)
            if autobins and not main_claimed and name not in pkg.bins and (crate / "src/main.rs").is_file():
                pkg.bins[name] = Bin(name, name, rel, [])
            if autobins:
                for file in sorted((crate / "src/bin").glob("*.rs")):
                    pkg.bins.setdefault(file.stem, Bin(file.stem, name, rel, []))
            packages[name] = pkg
    return packages


# --- Dockerfile -------------------------------------------------------------


@dataclass
class CargoBuild:
    text: str
    packages: list[str]
    bins: list[str]
    all_bins: bool
    features: list[str]
    all_features: bool
    no_default_features: bool

    def builds(self, b: Bin) -> bool:
        if self.packages and b.package not in self.packages:
            return False
        return self.all_bins or b.name in self.bins

    def enabled_features(self, package: Package) -> set[str]:
        """Features of `package` this build turns on, as Cargo does: the ones
        asked for, `default` unless --no-default-features, and whatever those
        turn on within the package, transitively."""
        if self.all_features:
            return set(package.features)
        pending = [] if self.no_default_features else ["default"]
        for f in self.features:
            pkg, _, feat = f.rpartition("/")
            if not pkg or pkg == package.name:
                pending.append(feat)
        enabled: set[str] = set()
        while pending:
            feat = pending.pop()
            if feat in enabled:
                continue
            enabled.add(feat)
            # Entries naming another crate ("dep:x", "x/y", "x?/y") do not
            # enable features of this package; plain names do.
            pending += [v for v in package.feature_table.get(feat, []) if "/" not in v and not v.startswith("dep:")]
        return enabled


def parse_dockerfile(path: Path) -> tuple[list[CargoBuild], list[str]]:
    """cargo build commands of RUN instructions, and binaries copied out of target/release."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    builds: list[CargoBuild] = []
    shipped: list[str] = []
    for instr in text.splitlines():
        if not re.match(r"\s*RUN\s", instr, re.IGNORECASE):
            continue
        shipped += re.findall(r"target/release/([A-Za-z0-9_-]+)", instr)
        for cmd in re.split(r"&&|\|\||;", instr):
            tokens = shlex.split(cmd)
            if "cargo" not in tokens:
                continue
            tokens = tokens[tokens.index("cargo") + 1 :]
            if not tokens or tokens[0] != "build":
                continue
            b = CargoBuild(" ".join(["cargo"] + tokens), [], [], False, [], False, False)
            it = iter(tokens[1:])
            for tok in it:
                if tok in ("-p", "--package"):
                    b.packages.append(next(it, ""))
                elif tok.startswith("--package="):
                    b.packages.append(tok.split("=", 1)[1])
                elif tok == "--bin":
                    b.bins.append(next(it, ""))
                elif tok.startswith("--bin="):
                    b.bins.append(tok.split("=", 1)[1])
                elif tok == "--bins":
                    b.all_bins = True
                elif tok in ("-F", "--features"):
                    b.features += re.split(r"[ ,]+", next(it, "").strip())
                elif tok.startswith("--features="):
                    b.features += re.split(r"[ ,]+", tok.split("=", 1)[1].strip())
                elif tok == "--all-features":
                    b.all_features = True
                elif tok == "--no-default-features":
                    b.no_default_features = True
            if not b.bins and not b.all_bins:
                b.all_bins = True  # plain `cargo build` builds every binary target
            builds.append(b)
    return builds, shipped


# --- compose ----------------------------------------------------------------


def as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (cfg or {}).get("condition", "service_started") for d, cfg in deps.items()}


def parse_port(entry) -> tuple[str, str, str]:
    """(host_ip, published, target) of one ports entry, long or short syntax."""
    if isinstance(entry, dict):
        return (
            str(entry.get("host_ip", "")),
            str(entry.get("published", "")),
            str(entry.get("target", "")),
        )
    parts = str(entry).split("/")[0].rsplit(":", 2)
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return parts[0], parts[1], parts[2]


# What a service does between SIGTERM and exit: HTTP shutdown_timeout(5), then
# DRAIN_TIMEOUT (5 s) for the deliveries in flight (shared/messaging/src/consumer.rs).
SHUTDOWN_SECONDS = 5 + 5


def duration_seconds(value: str) -> float | None:
    """Seconds of a Compose duration such as 30s, 1m30s or 500ms."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def expected_credentials(kind: str, service: dict) -> tuple[str, str, str, int]:
    """(user, password, database or vhost, port) a postgres/rabbitmq service is set up with."""
    env = environment(service)
    if kind == "postgres":
        user = env.get("POSTGRES_USER", "postgres")
        return user, env.get("POSTGRES_PASSWORD", ""), env.get("POSTGRES_DB", user), 5432
    return (
        env.get("RABBITMQ_DEFAULT_USER", "guest"),
        env.get("RABBITMQ_DEFAULT_PASS", "guest"),
        env.get("RABBITMQ_DEFAULT_VHOST", "/"),
        5672,
    )


def check_url(name: str, var: str, url: str, services: dict, deps: dict[str, str]) -> None:
    parts = urlsplit(url)
    kind = "postgres" if parts.scheme in ("postgres", "postgresql") else "amqp"
    host = parts.hostname or ""
    target = services.get(host)
    if target is None:
        report(False, f"{name}: {var} points at host {host!r}, which is no service of the compose file")
        return
    ok = deps.get(host) == "service_healthy" and bool(target.get("healthcheck"))
    report(
        ok,
        f"{name}: {var} host {host!r} is in depends_on with condition service_healthy"
        + ("" if ok else f" and has a healthcheck (depends_on condition: {deps.get(host)})"),
    )
    user, password, db, port = expected_credentials(kind, target)
    own = service_account(kind, unquote(parts.username or ""), services)
    if own is not None:
        # A service's own account, set up by a one-shot step with the
        # server's administrator account: its user and password are the
        # ones that step is given.
        account, step, step_password = own
        user, password = account, step_password
        if name not in one_shot_names(services):
            report(
                account == f"ecommerce_{name}",
                f"{name}: {var} logs in with its own account ecommerce_{name} (found {account})",
            )
    elif name not in one_shot_names(services):
        report(False, f"{name}: {var} logs in with the {kind} administrator account {user!r}, not ecommerce_{name}")
    got = (
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        unquote(parts.path[1:]) if parts.path else ("/" if kind == "amqp" else ""),
        parts.port or port,
    )
    want = (user, password, db, port)
    what = "user, password, database, port" if kind == "postgres" else "user, password, vhost, port"
    report(
        got == want,
        f"{name}: {var} ({what}) matches service {host!r}"
        + ("" if got == want else f": URL has {got}, {host} is set up with {want}"),
    )
    if kind == "amqp":
        report(got[0] != "guest", f"{name}: {var} does not use RabbitMQ's default guest account")


def one_shot_names(services: dict) -> set[str]:
    return {
        dep
        for s in services.values()
        for dep, condition in depends_on(s).items()
        if condition == "service_completed_successfully"
    }


# The setup step that creates the services' accounts on each server, and the
# variable of each service's password in its environment.
ACCOUNT_STEPS = {"postgres": (["migration", "up"], "_DATABASE_PASSWORD"), "amqp": (["topology"], "_AMQP_PASSWORD")}


def service_account(kind: str, user: str, services: dict) -> tuple[str, str, str] | None:
    """(user, setup step, password it sets) if `user` is a service account
    (ecommerce_<service>) that a one-shot setup step creates."""
    match = re.fullmatch(r"ecommerce_([a-z]+)", user)
    if not match:
        return None
    command, suffix = ACCOUNT_STEPS[kind]
    for step_name in sorted(one_shot_names(services)):
        step = services[step_name]
        if as_list(step.get("command")) == command:
            password = environment(step).get(match.group(1).upper() + suffix)
            if password is not None:
                return user, step_name, password
    report(False, f"{user}: no one-shot step running {' '.join(command)} is given {match.group(1).upper() + suffix}")
    return None


def check_ports_local(name: str, service: dict) -> None:
    for host_ip, published, target in (parse_port(p) for p in service.get("ports", [])):
        report(
            host_ip == "127.0.0.1",
            f"{name}: port {published or '(random)'}:{target} is published on 127.0.0.1 only"
            + ("" if host_ip == "127.0.0.1" else f" (bound to {host_ip or 'every interface'})"),
        )


def check_stop_grace(name: str, service: dict) -> None:
    raw = str(service.get("stop_grace_period", "10s"))
    seconds = duration_seconds(raw)
    ok = seconds is not None and seconds > SHUTDOWN_SECONDS
    report(
        ok,
        f"{name}: stop_grace_period {raw} is longer than its shutdown ({SHUTDOWN_SECONDS} s)"
        + ("" if ok else "; Docker would SIGKILL it mid-drain"),
    )


def check_http(name: str, service: dict, env: dict[str, str]) -> None:
    ports = {}
    for var in ("HTTP_ADDR", "ADMIN_ADDR"):
        addr = env.get(var)
        if addr is None:
            report(False, f"{name}: {var} is not set")
            return
        host, _, ports[var] = addr.rpartition(":")
        report(
            host in ("0.0.0.0", "[::]", "::") and ports[var].isdigit(),
            f"{name}: {var}={addr} listens on all interfaces of the container",
        )
    report(ports["HTTP_ADDR"] != ports["ADMIN_ADDR"], f"{name}: ADMIN_ADDR is apart from HTTP_ADDR")
    port = ports["ADMIN_ADDR"]
    test = " ".join(as_list((service.get("healthcheck") or {}).get("test")))
    urls = re.findall(r"https?://[^\s'\"]+", test)
    ok = bool(urls) and all(
        str(urlsplit(u).port) == port and urlsplit(u).path == "/ready" for u in urls
    )
    report(
        ok,
        f"{name}: healthcheck requests GET /ready on port {port}"
        + ("" if ok else f" (healthcheck test: {test or 'none'})"),
    )


# --- the edge (nginx) ---------------------------------------------------------


@dataclass
class EdgeRoute:
    listen: str
    upstream: str
    port: str
    via_variable: bool


def bind_mounts(service: dict) -> dict[str, Path]:
    """Host paths mounted into the service, by their path in the container,
    as Compose normalizes them."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume.get("target", "")
        else:
            source, _, rest = str(volume).partition(":")
            target = rest.split(":")[0]
        if source:
            path = Path(source)
            mounts[target.rstrip("/")] = path if path.is_absolute() else ROOT / path
    return mounts


def bind_sources(service: dict, target_prefix: str) -> list[Path]:
    """Host files bind-mounted under target_prefix."""
    return [path for target, path in bind_mounts(service).items() if target.startswith(target_prefix)]


def parse_edge(conf: str) -> tuple[list[EdgeRoute], bool]:
    """The server blocks of an nginx conf.d file, and whether it names Docker's DNS."""
    text = re.sub(r"#[^\n]*", "", conf)
    resolver = re.search(r"\bresolver\s+127\.0\.0\.11\b", text) is not None
    routes = []
    for block in re.split(r"\bserver\s*\{", text)[1:]:
        listen = re.search(r"\blisten\s+(\d+)\s*;", block)
        proxy = re.search(r"\bproxy_pass\s+http://([$\w.-]+):(\d+)\s*;", block)
        if not listen or not proxy:
            continue
        host, via_variable = proxy.group(1), proxy.group(1).startswith("$")
        if via_variable:
            assigned = re.search(r"\bset\s+" + re.escape(host) + r"\s+([\w.-]+)\s*;", block)
            host = assigned.group(1) if assigned else host
        routes.append(EdgeRoute(listen.group(1), host, proxy.group(2), via_variable))
    return routes, resolver


def http_port(service: dict, var: str = "HTTP_ADDR") -> str | None:
    addr = environment(service).get(var, "")
    port = addr.rpartition(":")[2]
    return port if port.isdigit() else None


def check_edge(services: dict, app_names: list[str]) -> None:
    edges = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("nginx")}
    report(len(edges) == 1, f"one nginx edge publishes the services' ports (found: {', '.join(edges) or 'none'})")
    if len(edges) != 1:
        return
    name, edge = next(iter(edges.items()))
    confs = bind_sources(edge, "/etc/nginx/conf.d/")
    report(bool(confs) and all(c.is_file() for c in confs), f"{name}: mounts its conf.d file(s) {[str(c.relative_to(ROOT)) for c in confs if c.is_relative_to(ROOT)]}")
    routes, resolver = [], False
    for conf in confs:
        if conf.is_file():
            more, named = parse_edge(conf.read_text())
            routes += more
            resolver = resolver or named
    report(resolver, f"{name}: resolves service names with Docker's DNS (resolver 127.0.0.11)")
    published = {(pub, target) for host_ip, pub, target in (parse_port(p) for p in edge.get("ports", []))}
    for app in app_names:
        port = http_port(services[app])
        if port is None:
            continue
        mine = [r for r in routes if r.upstream == app]
        ok = any(r.port == port and r.listen == port for r in mine)
        report(ok, f"{name}: listens on {port} and proxies to {app}:{port} (its HTTP_ADDR port)"
               + ("" if ok else f" (routes to {app}: {[(r.listen, r.port) for r in mine]})"))
        ok = all(r.via_variable for r in mine) and bool(mine)
        report(ok, f"{name}: names {app} through a variable, so nginx re-resolves it and reaches every replica")
        report((port, port) in published, f"{name}: publishes {port}:{port} for {app}")
        admin = http_port(services[app], "ADMIN_ADDR")
        report(
            all(r.port != admin for r in mine),
            f"{name}: never proxies to {app}'s admin port {admin} (probes and metrics stay inside)",
        )
        deps = depends_on(edge)
        report(deps.get(app) == "service_healthy", f"{name}: waits for {app} to be healthy (depends_on)")
    for r in routes:
        report(r.upstream in app_names, f"{name}: port {r.listen} proxies to {r.upstream!r}, a service running this repository's image")


def check_no_host_port(name: str, service: dict) -> None:
    published = [f"{a}:{b}" for _, a, b in (parse_port(p) for p in service.get("ports", []))]
    report(not published, f"{name}: publishes no host port, so it can run as several replicas (--scale)"
           + ("" if not published else f" (ports: {', '.join(published)})"))


def check_limits(name: str, service: dict) -> None:
    limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    report("cpus" in limits and "memory" in limits, f"{name}: has CPU and memory limits (deploy.resources.limits: {limits or 'none'})")


def check_pinned(name: str, service: dict, built_images: set) -> None:
    image = str(service.get("image", ""))
    if service.get("build") or not image or image in built_images:
        return
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
    ok = re.match(r"v?\d+\.\d+(\.\d+)?", tag) is not None
    report(ok, f"{name}: image {image} is pinned to a version")


def testkit_account() -> tuple[str, str]:
    source = (ROOT / "testkit/src/lib.rs").read_text()
    value = lambda const: re.search(rf'pub const {const}: &str = "([^"]*)";', source).group(1)
    return value("COMPOSE_USER"), value("COMPOSE_PASSWORD")


def check_test_access(services: dict) -> None:
    user, password = testkit_account()
    # PostgreSQL; AMQP, the management API (a vhost per test) and the
    # Prometheus endpoint (the dashboard test) of RabbitMQ.
    for kind, ports in (("postgres", ["5432"]), ("rabbitmq", ["5672", "15672", "15692"])):
        found = [s for s in services.values() if str(s.get("image", "")).startswith(kind)]
        if len(found) != 1:
            report(False, f"one {kind} service (found {len(found)})")
            continue
        want_user, want_password, _, _ = expected_credentials("postgres" if kind == "postgres" else "amqp", found[0])
        report((want_user, want_password) == (user, password),
               f"{kind}: set up with the tests' default account {user}/{password} (testkit::COMPOSE_USER) from .env.example"
               + ("" if (want_user, want_password) == (user, password) else f"; it has {want_user}/{want_password}"))
        published = {(h, pub, t) for h, pub, t in (parse_port(p) for p in found[0].get("ports", []))}
        for port in ports:
            report(("127.0.0.1", port, port) in published, f"{kind}: publishes 127.0.0.1:{port} for the tests")
    # The services' own accounts: the tests log in as them with
    # testkit::service_password ("<service>-dev"), which compose's setup
    # steps must have given them.
    if 'format!("{service}-dev")' not in (ROOT / "testkit/src/lib.rs").read_text():
        report(False, "testkit::service_password is format!(\"{service}-dev\")")
        return
    for kind in ("postgres", "amqp"):
        for service in ("order", "product", "notification"):
            own = service_account(kind, f"ecommerce_{service}", services)
            if own is not None:
                report(own[2] == f"{service}-dev",
                       f"{own[1]}: gives ecommerce_{service} the tests' password {service}-dev (testkit::service_password) from .env.example"
                       + ("" if own[2] == f"{service}-dev" else f"; it gives {own[2]!r}"))


def check_grafana(services: dict) -> None:
    """Grafana has no Debian package, so CI cannot run it: what it reads at
    startup is checked here instead (provisioned data sources and dashboards,
    the home dashboard, each panel's data source)."""
    found = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("grafana/grafana")}
    report(len(found) == 1, "one Grafana service (observability profile)")
    if len(found) != 1:
        return
    name, service = next(iter(found.items()))
    mounts = bind_mounts(service)

    def on_host(path: str) -> Path | None:
        for target in sorted(mounts, key=len, reverse=True):
            if path == target or path.startswith(target + "/"):
                return mounts[target] / path[len(target):].lstrip("/")
        return None

    provisioning = on_host("/etc/grafana/provisioning")
    report(provisioning is not None and provisioning.is_dir(), f"{name}: mounts its provisioning at /etc/grafana/provisioning")
    if provisioning is None or not provisioning.is_dir():
        return
    uids = set()
    for file in sorted((provisioning / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(file.read_text()).get("datasources") or []:
            uids.add(source.get("uid"))
            url = urlsplit(str(source.get("url", "")))
            target = services.get(url.hostname or "")
            ok = target is not None and str(target.get("image", "")).startswith("prom/prometheus") and url.port == 9090
            report(ok, f"{name}: data source {source.get('name')!r} ({url.geturl()}) is the Prometheus service on 9090")
    report(bool(uids), f"{name}: provisions a data source")
    boards = []
    for file in sorted((provisioning / "dashboards").glob("*.y*ml")):
        for provider in yaml.safe_load(file.read_text()).get("providers") or []:
            path = str((provider.get("options") or {}).get("path", ""))
            folder = on_host(path)
            ok = folder is not None and folder.is_dir() and any(folder.glob("*.json"))
            report(ok, f"{name}: dashboard provider {provider.get('name')!r} reads {path}, a mounted folder of dashboards")
            if ok:
                boards += sorted(folder.glob("*.json"))
    home = (service.get("environment") or {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        home_file = on_host(home)
        report(home_file is not None and home_file.is_file(), f"{name}: the home dashboard {home} is a mounted file")
    for board in boards:
        panels = json.loads(board.read_text()).get("panels") or []
        used = {(item.get("datasource") or {}).get("uid")
                for panel in panels for item in [panel, *(panel.get("targets") or [])]}
        report(used <= uids, f"{name}: every panel of {board.name} queries a provisioned data source ({sorted(uids)})"
               + ("" if used <= uids else f"; it names {sorted(used - uids)}"))


def check_migrate_step(services: dict, one_shots: set, app_names: list[str]) -> None:
    migrators = [n for n in sorted(one_shots) if as_list(services.get(n, {}).get("command")) == ["migration", "up"]]
    report(len(migrators) == 1, f"one one-shot service runs `migration up` (found: {', '.join(migrators) or 'none'})")
    if len(migrators) != 1:
        return
    migrate = migrators[0]
    # The services declare no exchange or queue: the topology step runs
    # first, and migrate after it, so a current schema means a topology.
    declarers = [n for n in sorted(one_shots) if as_list(services.get(n, {}).get("command")) == ["topology"]]
    report(len(declarers) == 1, f"one one-shot service runs `topology` (found: {', '.join(declarers) or 'none'})")
    if declarers:
        condition = depends_on(services[migrate]).get(declarers[0])
        report(
            condition == "service_completed_successfully",
            f"{migrate}: starts once {declarers[0]} has succeeded (depends_on condition: {condition})",
        )
    for app in app_names:
        if "DATABASE_URL" not in environment(services[app]):
            continue
        condition = depends_on(services[app]).get(migrate)
        report(
            condition == "service_completed_successfully",
            f"{app}: starts once {migrate} has succeeded (depends_on condition: {condition})",
        )


def check_prometheus(services: dict, app_names: list[str]) -> None:
    found = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("prom/prometheus")}
    report(len(found) == 1, "one Prometheus service (observability profile)")
    if len(found) != 1:
        return
    name, service = next(iter(found.items()))
    configs = bind_sources(service, "/etc/prometheus/prometheus.yml")
    if not configs or not configs[0].is_file():
        report(False, f"{name}: mounts its prometheus.yml")
        return
    config = yaml.safe_load(configs[0].read_text())
    scraped = set()
    for job in config.get("scrape_configs") or []:
        for sd in job.get("dns_sd_configs") or []:
            for host in sd.get("names") or []:
                scraped.add((host, str(sd.get("port"))))
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                host, _, port = str(target).rpartition(":")
                scraped.add((host, port))
    for app in app_names:
        port = http_port(services[app], "ADMIN_ADDR")
        report((app, port) in scraped, f"{name}: scrapes {app} on its admin port {port} (every replica: dns_sd_configs)")
    for host, port in sorted(scraped):
        report(host in services, f"{name}: scrape target {host}:{port} is a service of the compose file")


def main() -> int:
    config = yaml.safe_load(Path(sys.argv[1]).read_text())
    services: dict[str, dict] = config.get("services") or {}
    packages = load_workspace()
    all_bins = {b.name: b for p in packages.values() for b in p.bins.values()}
    builds, shipped = parse_dockerfile(ROOT / "Dockerfile")

    # The Dockerfile: every binary it ships exists and is built with its features.
    for bin_name in shipped:
        b = all_bins.get(bin_name)
        if b is None:
            report(False, f"Dockerfile copies target/release/{bin_name}, which is no [[bin]] of a workspace member")
            continue
        pkg = packages[b.package]
        builders = [c for c in builds if c.builds(b)]
        good = [c for c in builders if set(b.required_features) <= c.enabled_features(pkg)]
        needs = f" with its required-features {b.required_features}" if b.required_features else ""
        if good:
            report(True, f"Dockerfile builds {bin_name} ({b.crate_dir}/Cargo.toml){needs}: `{good[-1].text}`")
        else:
            report(False, f"Dockerfile builds {bin_name} ({b.crate_dir}/Cargo.toml){needs}: no cargo build command does")
    for c in builds:
        for f in c.features:
            pkg_name, _, feat = f.rpartition("/")
            targets = [pkg_name] if pkg_name else (c.packages or list(packages))
            ok = all(t in packages and feat in packages[t].features for t in targets)
            report(ok, f"Dockerfile feature {f!r} exists in [features] of {', '.join(targets)}")

    # The services that run the image built here.
    built_images = {s.get("image") for s in services.values() if s.get("build")}
    one_shots = {
        dep
        for s in services.values()
        for dep, condition in depends_on(s).items()
        if condition == "service_completed_successfully"
    }
    app_names = []
    for name, service in services.items():
        check_ports_local(name, service)
        check_pinned(name, service, built_images)
        check_limits(name, service)
        command = as_list(service.get("command"))
        ours = bool(service.get("build")) or service.get("image") in built_images
        if not ours:
            if command and command[0] in all_bins:
                report(False, f"{name}: runs binary {command[0]!r} but its image {service.get('image')!r} is not built by this compose file")
            continue
        if name not in one_shots:
            app_names.append(name)
        check_no_host_port(name, service)
        if not command:
            report(False, f"{name}: has no command naming the binary to run (the image's default is order)")
            continue
        binary = command[0]
        b = all_bins.get(binary)
        if b:
            report(True, f"{name}: command {binary!r} is [[bin]] name = \"{binary}\" of {b.crate_dir}/Cargo.toml, a workspace member")
        else:
            report(False, f"{name}: command {binary!r} names no binary of a workspace member")
        report(binary in shipped, f"{name}: the Dockerfile copies target/release/{binary} into the image")

        env = environment(service)
        if name in one_shots:
            report(service.get("restart", "no") == "no", f"{name}: a one-shot step, never restarted (restart: no)")
        else:
            if "HTTP_ADDR" in env or service.get("ports") or service.get("healthcheck"):
                check_http(name, service, env)
            check_stop_grace(name, service)
        deps = depends_on(service)
        for var, value in sorted(env.items()):
            if re.match(r"(postgres|postgresql|amqp|amqps)://", value):
                check_url(name, var, value, services, deps)

    report(bool(app_names), f"{len(app_names)} services run the image built from this repository")
    check_migrate_step(services, one_shots, app_names)
    check_edge(services, app_names)
    check_test_access(services)
    check_prometheus(services, app_names)
    check_grafana(services)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
