"""A team's first day: the container image (Dockerfile) and the Kubernetes manifests
(examples/kubernetes/). There is no docker and no cluster here, so:

* every manifest is validated against the Kubernetes schemas (kubernetes-validate,
  strict: an unknown field fails), the ServiceMonitors against the Prometheus
  Operator's CRD schema and kustomization.yaml against SchemaStore's (both vendored
  in tests/schemas/), and the names that tie them together must resolve;
* the Dockerfile is parsed (dockerfile-parse) for what matters: a non-root user, the
  serve command on an explicit 0.0.0.0:9404, the exposed port, the journal's
  volume, a healthcheck;
* the image's command is then run for real: the package built from exactly the
  files the Dockerfile copies, installed into a fresh venv as the image does, and
  started with the image's environment and command line, without capabilities and
  with the journal on a read-only mount. It serves the journal's numbers, writes
  nothing beside the journal, keeps its state in the state folder, and the
  image's HEALTHCHECK command passes against it (and fails once it is gone).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, unavailable
from test_exporter import free_port, get, stop, wait_http
from test_metrics import parse, rec, value, write

try:  # the test extra (pyproject.toml) installs them
    import dockerfile_parse
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as exc:  # pragma: no cover - skipped locally, a failure in CI
    if os.environ.get("CI"):
        raise
    pytest.skip(f"{exc.name} is not installed: pip install -e '.[test]'",
                allow_module_level=True)

KUBE = ROOT / "examples" / "kubernetes"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
DOCKERFILE = ROOT / "Dockerfile"
# The oldest Kubernetes still commonly run, and the newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
PORT = 9404


# ------------------------------------------------------------------------ the manifests


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) of every resource under examples/kubernetes/."""
    out = []
    for path in sorted(KUBE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        with open(path, encoding="utf-8") as f:
            out += [(path.name, doc) for doc in yaml.safe_load_all(f) if doc is not None]
    return out


def kind(wanted: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == wanted]


def one(wanted: str, name: str) -> dict[str, Any]:
    found = [doc for doc in kind(wanted) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{wanted}/{name}: {len(found)} found"
    return found[0]


def kustomization() -> dict[str, Any]:
    with open(KUBE / "kustomization.yaml", encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def closed(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as `kubectl apply --validate=strict` reads it: an
    object with declared properties takes no others (the API server would drop
    them, and a typo would silently do nothing)."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def servicemonitor_validator() -> Any:
    with open(SCHEMAS / "servicemonitor-v1.json", encoding="utf-8") as f:
        schema = closed(json.load(f))
    return jsonschema.Draft7Validator(schema)


def test_every_manifest_is_valid_kubernetes() -> None:
    docs = manifests()
    kinds = sorted({doc["kind"] for _, doc in docs})
    assert kinds == ["ConfigMap", "Deployment", "Namespace", "PersistentVolumeClaim",
                     "Service", "ServiceMonitor"]
    for version in KUBE_VERSIONS:
        for name, doc in docs:
            if doc["kind"] == "ServiceMonitor":
                continue  # a CRD: the next test
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name}: {doc['kind']} is not valid Kubernetes {version}: {exc}")


def test_a_misspelled_field_fails_the_kubernetes_validation() -> None:
    deployment = one("Deployment", "claude-token-collector")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0] = {
        **container, "volumeMount": container["volumeMounts"]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[-1], strict=True)


def test_servicemonitors_match_the_prometheus_operator_crd() -> None:
    validator = servicemonitor_validator()
    monitors = kind("ServiceMonitor")
    assert [m["metadata"]["name"] for m in monitors] == ["claude-token-collector", "pushgateway"]
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        errors = [e.message for e in validator.iter_errors(monitor)]
        assert errors == [], monitor["metadata"]["name"]
    # the check can fail: an endpoint field in the wrong case is refused
    broken = json.loads(json.dumps(monitors[1]))
    broken["spec"]["endpoints"][0]["honorlabels"] = True
    assert list(validator.iter_errors(broken))


def test_kustomization_lists_every_manifest_and_matches_its_schema() -> None:
    data = kustomization()
    with open(SCHEMAS / "kustomization.json", encoding="utf-8") as f:
        validator = jsonschema.Draft7Validator(json.load(f))
    assert [e.message for e in validator.iter_errors(data)] == []
    files = sorted(p.name for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(data["resources"]) == files
    namespace = one("Namespace", data["namespace"])
    assert namespace["metadata"]["name"] == "claude-usage"
    # the image it sets is the one the collector runs
    images = {image["name"] for image in data["images"]}
    collector = one("Deployment", "claude-token-collector")
    assert {c["image"] for c in collector["spec"]["template"]["spec"]["containers"]} <= images


def test_services_monitors_and_volumes_find_what_they_name() -> None:
    deployments = {d["metadata"]["name"]: d for d in kind("Deployment")}
    assert set(deployments) == {"claude-token-collector", "pushgateway"}
    for service in kind("Service"):
        name = service["metadata"]["name"]
        pods = deployments[name]["spec"]["template"]
        selector = service["spec"]["selector"]
        assert selector.items() <= pods["metadata"]["labels"].items(), name
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() \
            <= pods["metadata"]["labels"].items()
        container_ports = {p["name"]: p["containerPort"]
                           for c in pods["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (name, port)
            assert port["port"] == container_ports[port["targetPort"]]
    for monitor in kind("ServiceMonitor"):
        services = [s for s in kind("Service") if monitor["spec"]["selector"]["matchLabels"].items()
                    <= s["metadata"]["labels"].items()]
        assert [s["metadata"]["name"] for s in services] == [monitor["metadata"]["name"]]
        names = {p["name"] for p in services[0]["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= names
    # pushed series keep each laptop's job and host labels; the collector's are its own
    assert one("ServiceMonitor", "pushgateway")["spec"]["endpoints"][0]["honorLabels"] is True
    assert "honorLabels" not in one("ServiceMonitor", "claude-token-collector")["spec"]["endpoints"][0]
    claims = {c["metadata"]["name"] for c in kind("PersistentVolumeClaim")}
    maps = {m["metadata"]["name"] for m in kind("ConfigMap")}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= set(volumes)
        for v in volumes.values():
            if "configMap" in v:
                assert v["configMap"]["name"] in maps
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims


def test_the_collector_runs_the_images_command_as_non_root_on_a_read_only_journal() -> None:
    deployment = one("Deployment", "claude-token-collector")
    assert deployment["spec"]["replicas"] == 1  # two would export the usage twice
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image()["uid"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[: len(image()["cmd"])] == image()["cmd"]  # the image's own command, then more
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    journal_dir = str(Path(env["CLAUDEWRAP_JOURNAL"]).parent)
    assert mounts[journal_dir]["readOnly"] is True
    assert volumes[mounts[journal_dir]["name"]]["persistentVolumeClaim"]["readOnly"] is True
    state = mounts[env["CLAUDEWRAP_STATE_DIR"]]
    assert not state.get("readOnly") and "emptyDir" in volumes[state["name"]]
    config = Path(env["CLAUDEWRAP_CONFIG"])
    assert volumes[mounts[str(config.parent)]["name"]]["configMap"]["name"] == "claudewrap-config"
    assert container["ports"] == [{"name": "metrics", "containerPort": PORT, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_the_configmaps_patterns_record_the_line_they_describe(tmp_path: Path) -> None:
    text = one("ConfigMap", "claudewrap-config")["data"]["config.toml"]
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    line = next(m[1] for m in re.finditer(r"^#\s+(review-bot: .*)$", text, re.MULTILINE))
    result = subprocess.run(
        [sys.executable, "-m", "claudewrap", "parse", "--config", str(config), line],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    (event,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert event["pattern"] == "user:review-bot"
    assert (event["input_tokens"], event["output_tokens"], event["cost_usd"], event["model"]) \
        == (12000, 800, 0.048, "claude-sonnet-4-5")


# ------------------------------------------------------------------------ the Dockerfile


def image() -> dict[str, Any]:
    """What the final stage of the Dockerfile runs, as the tests need it."""
    parser = dockerfile_parse.DockerfileParser(str(DOCKERFILE), env_replace=True,
                                               parent_env={"PATH": "$PATH"})
    final = [i for i in parser.structure
             if i["startline"] > max(j["startline"] for j in parser.structure
                                     if j["instruction"] == "FROM")]

    def last(instruction: str) -> str:
        values = [i["value"] for i in final if i["instruction"] == instruction]
        assert values, f"no {instruction} in the final stage"
        return str(values[-1])

    user = last("USER")
    health = last("HEALTHCHECK")
    options, _, health_cmd = health.partition("CMD ")
    return {
        "parser": parser,
        "user": user,
        "uid": int(user.split(":")[0]),
        "entrypoint": json.loads(last("ENTRYPOINT")),
        "cmd": json.loads(last("CMD")),
        "expose": last("EXPOSE").split(),
        "volumes": json.loads(last("VOLUME")),
        "env": parser.envs,
        "healthcheck": json.loads(health_cmd),
        "healthcheck_options": options.split(),
    }


def test_the_image_serves_as_non_root_on_an_explicit_address_with_a_healthcheck() -> None:
    img = image()
    assert img["user"] == "10001:10001" and img["uid"] != 0
    assert img["entrypoint"] == ["claudewrap"]
    assert img["cmd"] == ["serve", "--host", "0.0.0.0", "--port", str(PORT)]
    assert img["expose"] == [str(PORT)]
    env = img["env"]
    # the journal's folder is a volume of its own; the state goes elsewhere
    journal_dir = str(Path(env["CLAUDEWRAP_JOURNAL"]).parent)
    assert journal_dir in img["volumes"] and env["CLAUDEWRAP_STATE_DIR"] in img["volumes"]
    assert not env["CLAUDEWRAP_STATE_DIR"].startswith(journal_dir + "/")
    assert env["HOME"] == env["CLAUDEWRAP_STATE_DIR"]
    assert env["PATH"].startswith("/opt/claudewrap/bin:")
    # the healthcheck asks the served port's /healthz, exec form (no shell in the way)
    assert img["healthcheck"][0] == "python"
    assert f"http://127.0.0.1:{PORT}/healthz" in " ".join(img["healthcheck"])
    assert "--timeout=5s" in img["healthcheck_options"]
    # the documented run line mounts the journal read-only, the rest of the image too
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert f":{journal_dir}:ro" in text and "--read-only" in text


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether docker leaves ``path`` (relative to the context) out: the last
    .dockerignore pattern matching it or one of its parent folders decides."""
    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        for part in re.split(r"(\*\*|\*|\?)", pattern.strip("/")):
            out += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        return re.compile(out)

    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for line in patterns:
        negate = line.startswith("!")
        compiled = regex(line[1:] if negate else line)
        if any(compiled.fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def build_context(into: Path) -> Path:
    """The files docker would send (the repository's, minus .dockerignore), laid out
    as the build stage's COPY lines put them: the /src the image installs."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    context = {p for p in tracked if (ROOT / p).is_file() and not dockerignored(p, patterns)}
    parser = image()["parser"]
    src = into / "src"
    for instruction in parser.structure:
        if instruction["instruction"] != "COPY" or instruction["value"].startswith("--from"):
            continue
        *sources, dest = instruction["value"].split()
        assert dest.startswith("/src")
        for source in sources:
            files = [p for p in context if p == source or p.startswith(source + "/")]
            assert files, f"COPY {source}: not in the build context"
            for p in files:
                target = src / dest.removeprefix("/src").strip("/") / (
                    Path(p).name if dest.endswith("/") else Path(p).relative_to(source))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / p, target)
    return src


def test_the_build_context_holds_the_package_and_nothing_else() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not dockerignored("claudewrap/exporter.py", patterns)
    assert not dockerignored("shell/claudewrap.bash", patterns)
    assert not dockerignored("pyproject.toml", patterns)
    assert dockerignored("claudewrap/__pycache__/exporter.cpython-311.pyc", patterns)
    assert dockerignored("tests/test_deploy.py", patterns)
    assert dockerignored(".cache/claude-code/2.1.332/x", patterns)
    assert dockerignored(".git/config", patterns)


# ------------------------------------------------------------------------ the image's command, run


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/claudewrap of the image: the build stage's `pip install /src` into a venv,
    from exactly the files it copies (dependencies from this Python, offline)."""
    root = tmp_path_factory.mktemp("image")
    src = build_context(root)
    venv = root / "opt-claudewrap"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", str(src)],
        capture_output=True, text=True, timeout=300, check=False, cwd=root)
    assert result.returncode == 0, result.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import claudewrap.export.exporter as e; print(e.__file__)"],
                           capture_output=True, text=True, check=True, cwd=root,
                           env={"PATH": os.environ["PATH"]}).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout
    return venv


def read_only_view(source: Path, view: Path) -> list[str]:
    """A command prefix under which ``view`` shows ``source`` read-only and the
    process has no capabilities (root without them is an ordinary user to the
    files it does not own). A private mount namespace where one can be made
    (root, or an unprivileged user namespace); else, for a non-root user, the
    folder made read-only by its mode."""
    view.mkdir()
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if unshare and setpriv:
        userns = [] if os.geteuid() == 0 else ["--map-root-user"]
        probe = subprocess.run([unshare, *userns, "--mount", "true"], capture_output=True,
                               check=False, timeout=30)
        if probe.returncode == 0:
            script = (f"mount --bind -o ro {shlex.quote(str(source))} {shlex.quote(str(view))}"
                      f' && exec {shlex.quote(setpriv)} --bounding-set=-all --inh-caps=-all'
                      f' --no-new-privs "$@"')
            return [unshare, *userns, "--mount", "sh", "-c", script, "sh"]
    if os.geteuid() != 0:
        view.rmdir()
        view.symlink_to(source)
        source.chmod(0o555)
        return []
    unavailable("cannot make a read-only mount here (unshare and setpriv from util-linux)")


def listing(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in folder.iterdir()}


class Image:
    """The image's command with the image's environment: its paths mapped to folders
    here and its port to a free one (9404 may be taken on this machine)."""

    def __init__(self, venv: Path, tmp_path: Path) -> None:
        img = image()
        self.port = free_port()
        self.source = tmp_path / "journal-volume"  # what the laptop or the PVC holds
        self.source.mkdir(mode=0o700)
        self.view = tmp_path / "journal"  # what the container sees, read-only
        self.state = tmp_path / "state"
        self.state.mkdir(mode=0o700)
        env = img["env"]
        paths = {"/opt/claudewrap": str(venv),
                 str(Path(env["CLAUDEWRAP_JOURNAL"]).parent): str(self.view),
                 env["CLAUDEWRAP_STATE_DIR"]: str(self.state)}

        def here(value: str) -> str:
            for inside, outside in paths.items():
                value = re.sub(rf"(?<![\w/]){re.escape(inside)}(?=/|$|:)", outside, value)
            return value.replace("$PATH", os.environ["PATH"])

        self.env = {k: here(v) for k, v in env.items()}
        self.journal = self.source / Path(env["CLAUDEWRAP_JOURNAL"]).name
        self.prefix = read_only_view(self.source, self.view)
        self.command = [here(a) for a in img["entrypoint"] + img["cmd"]]
        assert self.command[-2:] == ["--port", str(PORT)]
        self.command[-1] = str(self.port)
        self.healthcheck = [a.replace(f":{PORT}/", f":{self.port}/") for a in img["healthcheck"]]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen([*self.prefix, *self.command], env=self.env,
                                     cwd=self.state, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        wait_http(self.url + "/healthz", self.proc, limit=60)
        return self.proc

    def health(self) -> int:
        return subprocess.run(self.healthcheck, env=self.env, capture_output=True,
                              timeout=30, check=False).returncode


@pytest.fixture
def container(installed: Path, tmp_path: Path) -> Iterator[Image]:
    img = Image(installed, tmp_path)
    try:
        yield img
    finally:
        if img.proc is not None:
            stop(img.proc, signal.SIGKILL)
        img.source.chmod(0o700)


@pytest.mark.e2e
def test_the_images_command_serves_a_read_only_journal_and_keeps_its_state_aside(
        container: Image) -> None:
    write(container.journal, [
        rec(120, input_tokens=1000, output_tokens=100, cost_usd=0.5),
        rec(60, "s2", model="claude-opus-4-1", input_tokens=10, project="api", cost_usd=0.25),
    ]).chmod(0o600)
    before = listing(container.source)
    proc = container.start()
    caps = Path(f"/proc/{proc.pid}/status").read_text()
    assert re.search(r"^CapEff:\s+0+$", caps, re.MULTILINE), "serve runs with capabilities"
    assert get(container.url + "/healthz")[2] == b"ok\n"
    status, _, body = get(container.url + "/metrics")
    assert status == 200, body
    s = parse(body)
    assert value(s, "claude_api_tokens_input_total") == 1010
    assert value(s, "claude_api_tokens_output_total") == 100
    assert value(s, "claude_api_cost_dollars_total") == 0.75
    assert value(s, "claude_api_tokens_input_total", project="api") == 10
    # a CI runner appends on its side of the volume: the next scrape has it
    write(container.journal, [rec(10, input_tokens=5, cost_usd=0.01)], "a")
    grown = listing(container.source)
    s = parse(get(container.url + "/metrics")[2])
    assert value(s, "claude_api_tokens_input_total") == 1015
    assert value(s, "claude_api_cost_dollars_total") == pytest.approx(0.76)
    assert container.health() == 0
    assert stop(proc) == 0
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert f"0.0.0.0:{container.port}/metrics" in err and str(container.view) in err
    # nothing was written beside the journal; its state went to the state folder
    assert listing(container.source) == grown and set(before) == set(grown) == {"journal.jsonl"}
    kept = {p.name: p.stat().st_mode & 0o777 for p in container.state.iterdir()
            if not p.name.startswith(".")}
    assert kept.get("journal.jsonl.metrics") == 0o600, kept
    assert kept.get("journal.jsonl.counters") == 0o600, kept
    # the healthcheck fails once serve is gone
    assert container.health() != 0
    # a restart starts from the kept state and shows the same numbers
    container.start()
    s = parse(get(container.url + "/metrics")[2])
    assert value(s, "claude_api_tokens_input_total") == 1015
    assert value(s, "claude_api_cost_dollars_total") == pytest.approx(0.76)
    assert listing(container.source) == grown


@pytest.mark.e2e
def test_a_state_dir_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    journal = write(tmp_path / "journal.jsonl", [rec(60, input_tokens=1)])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "claudewrap", "serve", "--port", "0", "--journal", str(journal)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT),
             "CLAUDEWRAP_STATE_DIR": str(blocker / "state")})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [(
        f"Error: cannot create --state-dir {blocker / 'state'}: Not a directory;"
        f" give a writable folder")]


def test_metrics_keep_their_counters_in_the_state_dir_too(tmp_path: Path) -> None:
    """`claudewrap metrics` (textfile, push) shares serve's counters: with
    $CLAUDEWRAP_STATE_DIR set it keeps them there, not beside the journal."""
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    journal = write(journal_dir / "journal.jsonl", [rec(60, input_tokens=7, cost_usd=0.5)])
    state = tmp_path / "state"
    state.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "claudewrap", "metrics", "--journal", str(journal)],
        capture_output=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CLAUDEWRAP_STATE_DIR": str(state)})
    assert result.returncode == 0, result.stderr
    assert value(parse(result.stdout), "claude_api_tokens_input_total") == 7
    assert [p.name for p in journal_dir.iterdir()] == ["journal.jsonl"]
    assert (state / "journal.jsonl.counters").is_file()
