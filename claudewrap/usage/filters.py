"""Which usage a report covers (Filters, and whether a row matches them), and the
labels reports give rows: the dimensions, a model-less row, an empty attribute."""

from __future__ import annotations

from claudewrap.plain import plain
from claudewrap.store.records import MAIN_AGENT
from claudewrap.usage.rule import AGENT_TAG, COMMAND_TAG

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from typing import Any

UNKNOWN_MODEL = "unknown"  # the model label of a record without one
NONE = "(none)"  # the label of an empty project, host, pane or tag
DIMENSIONS = ("model", "day", "week", "month", "project", "session", "pane", "host", "source",
              "agent", "command")
NO_COMMAND = "(none)"  # the command of a typed prompt, as reports show and filter it


@plain
class Filters:
    """Which usage a report covers. Text filters OR within a kind; tags must all match.

    ``since``/``until`` are local dates (YYYY-MM-DD, until exclusive) applied to
    whole days; finer windows are built into the state (UsageState ``since``).
    """

    since_day: str | None = None
    until_day: str | None = None
    projects: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # case-insensitive substrings of the model id
    tags: tuple[tuple[str, str], ...] = ()
    sessions: tuple[str, ...] = ()  # wrapper or Claude session ids
    agents: tuple[str, ...] = ()  # "main" is the main thread
    commands: tuple[str, ...] = ()  # slash command names, without the "/"

    def active(self) -> bool:
        return bool(self.projects or self.models or self.tags or self.agents or self.commands)


def matches(filters: Filters, model: Any, attrs: tuple[Any, ...]) -> bool:
    if filters.projects and attrs[0] not in filters.projects:
        return False
    if filters.models:
        name = (model or UNKNOWN_MODEL).lower()
        if not any(m.lower() in name for m in filters.models):
            return False
    if filters.tags:
        tags = dict(attrs[3])
        if any(tags.get(k) != v for k, v in filters.tags):
            return False
    if filters.agents and (attribution(attrs, AGENT_TAG) or MAIN_AGENT) not in filters.agents:
        return False
    return not filters.commands or (attribution(attrs, COMMAND_TAG) or NO_COMMAND) in filters.commands


def attribution(attrs: tuple[Any, ...], key: str) -> str | None:
    """The agent (AGENT_TAG) or command (COMMAND_TAG) of an attribution, or None."""
    for k, value in attrs[3]:
        if k == key:
            return str(value)
    return None


