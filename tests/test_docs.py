"""The documentation keeps up with the code (as sqlite-utils' tests/test_docs.py).

Every command and every long option is documented; docs/commands.md is what
scripts/cli_reference.py generates; every command line in an example names a
real command and real options; README.md stays short, starts with the install
and the test command (the one .ci/run runs), and its links and the docs' links
resolve; the module map names every module.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCED = re.MULTILINE | re.DOTALL
DOCS = ROOT / "docs"
README = ROOT / "README.md"
TEST_COMMAND = "bash scripts/test.sh"
# Commands the docs describe that are being written now (issue 18): remove a
# name once its command exists (test_pending_commands_are_still_pending says so).
PENDING: set[str] = set()


def cli_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference",
                                                  ROOT / "scripts" / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = cli_reference()
COMMANDS: dict[str, tuple[click.Command, click.Context]] = {
    path: (cmd, ctx) for path, cmd, ctx in REF.commands()}


def topic_text() -> str:
    """README.md and every docs page but the generated reference."""
    pages = [README, *sorted(p for p in DOCS.glob("*.md") if p.name != "commands.md")]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def long_options(cmd: click.Command, *, hidden: bool = False) -> set[str]:
    """``cmd``'s long option names (the hidden ones too if ``hidden``)."""
    return {o for p in cmd.params if isinstance(p, click.Option) and (hidden or not p.hidden)
            for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_is_on_a_topic_page(path: str) -> None:
    assert path in topic_text(), f"`{path}` is on no page of docs/ (only in commands.md?)"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_long_option_is_documented(path: str) -> None:
    text = topic_text()
    cmd = COMMANDS[path][0]
    missing = sorted(o for o in long_options(cmd) - {"--help"}
                     if not re.search(re.escape(o) + r"(?![\w-])", text))
    assert not missing, f"{path}: {missing} appear on no page of docs/ nor in README.md"


def test_the_command_reference_is_up_to_date() -> None:
    current = (DOCS / "commands.md").read_text(encoding="utf-8")
    assert current == REF.render(), "docs/commands.md is out of date: run " \
                                    "python3 scripts/cli_reference.py"


def test_the_command_reference_has_every_command_and_option() -> None:
    text = (DOCS / "commands.md").read_text(encoding="utf-8")
    for path, (cmd, _) in COMMANDS.items():
        section = text.split(f"\n## `{path}`\n", 1)[1].split("\n## ", 1)[0]
        for option in long_options(cmd):
            assert option in section, (path, option)


def fenced_blocks(text: str) -> Iterator[tuple[str, str]]:
    """(language, body) of each fenced code block."""
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, FENCED):
        yield match[1], match[2]


def example_commands() -> Iterator[tuple[str, list[str]]]:
    """(page, argv) of every `claudewrap ...` or `claude_usage ...` line in a
    bash or cron block of the README and docs (a `$ ` prompt is dropped)."""
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        if page.name == "commands.md":
            continue
        for lang, body in fenced_blocks(page.read_text(encoding="utf-8")):
            if lang not in ("bash", "cron"):
                continue
            for line in body.splitlines():
                line = line.removeprefix("$ ").split(" #", 1)[0].strip()
                line = re.sub(r"^\* \* \* \* \* ", "", line)  # a cron line
                if line.startswith("claude_usage"):
                    line = "claudewrap usage" + line.removeprefix("claude_usage")
                if not line.startswith("claudewrap "):
                    continue
                argv = shlex.split(line.split("|")[0].split(">")[0].split("&&")[0])
                yield page.name, argv[1:]


def resolve(argv: list[str]) -> tuple[str, list[str]]:
    """The command path ``argv`` names, and the rest of it."""
    path = "claudewrap"
    while argv and f"{path} {argv[0]}" in COMMANDS:
        path, argv = f"{path} {argv[0]}", argv[1:]
    if path == "claudewrap" and argv:
        from claudewrap.cli import ALIASES

        target = ALIASES.get(argv[0])
        if target:
            path, argv = f"claudewrap {target}", argv[1:]
    return path, argv


def test_example_commands_name_real_commands_and_options() -> None:
    examples = list(example_commands())
    assert len(examples) > 30, "the examples were not found"
    for page, argv in examples:
        path, rest = resolve(argv)
        if path == "claudewrap" and rest and rest[0] in PENDING:
            continue
        assert path != "claudewrap" or not rest or rest[0].startswith("-"), \
            f"{page}: `claudewrap {' '.join(argv)}`: no command {rest[0]!r}"
        if path == "claudewrap run":
            rest = rest[:rest.index("--")] if "--" in rest else rest  # claude's own after --
        options = long_options(COMMANDS[path][0], hidden=True) | {"--help"}
        for word in rest:
            flag = word.split("=", 1)[0]
            if flag.startswith("--"):
                assert flag in options, f"{page}: `claudewrap {' '.join(argv)}`: " \
                                        f"{path} has no option {flag}"


def test_pending_commands_are_still_pending() -> None:
    for name in PENDING:
        assert f"claudewrap {name}" not in COMMANDS, \
            f"`claudewrap {name}` exists now: take it out of PENDING in tests/test_docs.py"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 220, f"README.md has {lines} lines: move detail to a page in docs/"


def test_readme_begins_with_the_install_and_the_test_command() -> None:
    blocks = [body.strip() for _, body in fenced_blocks(README.read_text(encoding="utf-8"))]
    assert re.match(r"(pipx install|uv tool install) ", blocks[0]), blocks[0]
    assert blocks[1] == TEST_COMMAND
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == TEST_COMMAND, ".ci/run must run exactly the README's test command"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=FENCED)
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def links(page: Path) -> Iterator[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=FENCED)
    text = re.sub(r"`[^`\n]*`", "", text)
    for match in re.finditer(r"\]\(([^)\s]+)\)", text):
        target = match[1]
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    found = list(links(page))
    for target in found:
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: link to {target}: no such file"
        if anchor:
            assert dest.suffix == ".md", f"{page.name}: {target}"
            assert anchor in anchors(dest), f"{page.name}: link to {target}: no such heading"


def test_the_module_map_names_every_module() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "claudewrap"
    for module in sorted(package.rglob("*.py")):
        rel = module.relative_to(package)
        if module.name in ("__init__.py", "__main__.py") or rel.parts[0] == "commands":
            continue
        assert f"`{module.name}`" in text or f"/{module.name}`" in text, \
            f"claudewrap/{rel} is not in the module map of docs/architecture.md"
