"""Model -> list price per million tokens; the cost of usage Claude Code did not price.

Prices come from ``claudewrap/data/prices.toml``; a user file ``prices.toml`` in
the claudewrap config folder (or the file named by ``$CLAUDEWRAP_PRICES``)
overrides models field by field and adds new ones.

A model id is matched, in this order: exactly; without provider prefixes and
suffixes (``anthropic/``, ``us.anthropic.``, ``-v1:0``, ``@20240229``,
``-latest``, ``[1m]``); without its date (``-20250929``); by family and version
(``opus``/``sonnet``/``haiku`` + ``4-5``, ``3-7``, ...). Anything else is an
unknown model: its cost is None, never zero.

Cache writes are priced at the 5-minute rate: records do not say which cache
duration was written (the 1-hour rate is 1.6 times higher).

A table may also carry rates learned from the journal (:mod:`claudewrap.usage.price_fit`)
for models without a list price: they are used only when no list price
matches, by the model's own name, and every table knows where each of its
rates came from (:meth:`PriceTable.origin`).
"""

from __future__ import annotations

import os

from claudewrap.plain import plain, replace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path  # not at run time: see store/journal.py
    from typing import Any

    from claudewrap.store.journal import StrPath
    from claudewrap.store.records import UsageRecord

ENV_VAR = "CLAUDEWRAP_PRICES"
_RATES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
SHIPPED, USER, LEARNED = "shipped", "user", "learned"  # where a rate came from


class PriceFileError(ValueError):
    """A prices file could not be read; the message names the file and what to do."""


@plain(frozen=True)
class Price:
    """USD per million tokens; a rate is None when the model has no such price."""

    model: str
    input: float | None = None
    output: float | None = None
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cache_read_tokens: int,
             cache_write_tokens: int) -> float | None:
        """The cost in USD, or None when a needed rate is missing."""
        total = 0.0
        for tokens, rate in ((input_tokens, self.input), (output_tokens, self.output),
                             (cache_read_tokens, self.cache_read),
                             (cache_write_tokens, self.cache_write_5m)):
            if tokens:
                if rate is None:
                    return None
                total += tokens * rate
        return total / 1_000_000


# Model names are matched with string methods, not regular expressions: `re`
# (with enum, functools and collections) is ~8 ms of a status-line call's
# imports, and nothing else on that path needs it. Each function below does what
# the pattern in its docstring does (`$` included: the end, or before a final
# newline; `\d`: any Unicode decimal digit); tests/test_pricing_names.py holds
# them to those patterns.
_LOWER_DIGIT_DASH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_FAMILIES = ("opus", "sonnet", "haiku")


def _split_end(name: str) -> tuple[str, str]:
    """``name`` and where `$` may also match: before a final newline."""
    return (name[:-1], "\n") if name.endswith("\n") else (name, "")


def _drop_date(name: str) -> str:
    r"""``re.sub(r"-(?:19|20)\d{6}$", "", name)``."""
    t, nl = _split_end(name)
    if len(t) >= 9 and t[-9] == "-" and t[-8:-6] in ("19", "20") and t[-6:].isdecimal():
        return t[:-9] + nl
    return name


def _drop_provider(name: str) -> str:
    r"""``re.sub(r"^(?:[a-z0-9-]+\.)?anthropic\.", "", name)``."""
    dot = name.find(".")
    if dot > 0 and name.startswith("anthropic.", dot + 1) and _LOWER_DIGIT_DASH.issuperset(
            name[:dot]):
        return name[dot + 11:]
    return name.removeprefix("anthropic.")


def _drop_brackets(name: str) -> str:
    r"""``re.sub(r"\[[^\]]*\]$", "", name)``."""
    t, nl = _split_end(name) if not name.endswith("]") else (name, "")
    if not t.endswith("]"):
        return name
    start = t.find("[", t.rfind("]", 0, len(t) - 1) + 1, len(t) - 1)
    return t[:start] + nl if start >= 0 else name


def _drop_at(name: str) -> str:
    """``re.sub(r"@[0-9a-z-]+$", "", name)``."""
    t, nl = _split_end(name)
    at = t.rfind("@")
    if at >= 0 and at < len(t) - 1 and _LOWER_DIGIT_DASH.issuperset(t[at + 1:]):
        return t[:at] + nl
    return name


def _drop_version(name: str) -> str:
    r"""``re.sub(r"-v\d+(?::\d+)?$", "", name)``."""
    t, nl = _split_end(name)
    at = t.rfind("-v")
    if at >= 0:
        parts = t[at + 2:].split(":")
        if len(parts) <= 2 and all(p.isdecimal() for p in parts):  # "".isdecimal() is False
            return t[:at] + nl
    return name


def _drop_latest(name: str) -> str:
    """``re.sub(r"-latest$", "", name)``."""
    t, nl = _split_end(name)
    return t[:-7] + nl if t.endswith("-latest") else name


_SUFFIXES = (_drop_at, _drop_version, _drop_latest)


def _digits(text: str, most: int | None = None) -> int:
    """How many decimal digits ``text`` starts with (at most ``most``)."""
    n = 0
    for c in text if most is None else text[:most]:
        if not c.isdecimal():
            break
        n += 1
    return n


def _ends(text: str) -> bool:
    """``(?=$|-)`` at the start of ``text``."""
    return text in ("", "\n") or text.startswith("-")


def _numbers(text: str, then: Any) -> tuple[Any, int, int] | None:
    r"""``(\d+)(?:[-.](\d{1,2}))?`` at the start of ``text`` followed by what
    ``then(rest)`` accepts (it returns a value or None), tried in the order the
    regular expression backtracks: ``(then's value, major, minor)``."""
    for k in range(_digits(text), 0, -1):
        after = text[k:]
        if after[:1] in ("-", "."):
            for j in range(_digits(after[1:], 2), 0, -1):
                found = then(after[1 + j:])
                if found is not None:
                    return found, int(text[:k]), int(after[1:1 + j])
        found = then(after)
        if found is not None:
            return found, int(text[:k]), 0
    return None


def _family_then_end(text: str) -> str | None:
    """``-(opus|sonnet|haiku)(?=$|-)`` at the start of ``text``: the family."""
    for fam in _FAMILIES:
        if text.startswith("-" + fam) and _ends(text[len(fam) + 1:]):
            return fam
    return None


def _candidates(model: str) -> Iterator[str]:
    """``model`` made more and more general: each form is looked up in turn."""
    name = model.strip().lower()
    yield name
    name = _drop_provider(_drop_brackets(name).rsplit("/", 1)[-1])
    yield name
    for suffix in _SUFFIXES:
        name = suffix(name)
        yield name
    yield _drop_date(name)


def family_key(model: str) -> tuple[str, int, int] | None:
    r"""``("sonnet", 4, 5)`` for ``claude-sonnet-4-5-20250929`` or ``claude-4.5-sonnet``:
    ``^claude-(opus|sonnet|haiku)-(\d+)(?:[-.](\d{1,2}))?(?=$|-)``, else
    ``^claude-(\d+)(?:[-.](\d{1,2}))?-(opus|sonnet|haiku)(?=$|-)``, matched
    against the name without its date."""
    name = _drop_date(model.strip().lower())
    if not name.startswith("claude-"):
        return None
    for fam in _FAMILIES:
        if name.startswith(fam + "-", 7):
            found = _numbers(name[8 + len(fam):], lambda rest: True if _ends(rest) else None)
            if found is not None:
                return fam, found[1], found[2]
            break
    found = _numbers(name[7:], _family_then_end)
    return (found[0], found[1], found[2]) if found is not None else None


@plain(frozen=True)
class Learned:
    """Rates fitted from a model's printed costs (see :mod:`claudewrap.usage.price_fit`).

    ``samples`` is the number of equations the fit had (journal buckets: one per
    session, model and day), ``records`` the records behind them, ``error`` how far
    the fitted rates miss the printed costs (summed, relative: 0.001 is 0.1 %).
    """

    price: Price
    records: int
    samples: int
    error: float


class PriceTable:
    """Prices by model id, with the matching rules of this module.

    ``origins`` says, per model and rate, where the rate came from (SHIPPED or
    USER; missing: SHIPPED); ``learned`` holds rates learned from the journal for
    models that have no list price.
    """

    def __init__(self, prices: Mapping[str, Price], aliases: Mapping[str, str] | None = None,
                 *, origins: Mapping[str, Mapping[str, str]] | None = None,
                 learned: Mapping[str, Learned] | None = None):
        self.prices = dict(prices)
        self.aliases = dict(aliases or {})
        self.origins = {m: dict(o) for m, o in (origins or {}).items()}
        self.learned = {m.lower(): fit for m, fit in (learned or {}).items()}
        self._names: dict[str, Price] = {}
        self._families: dict[tuple[str, int, int], Price] = {}
        for key, price in self.prices.items():
            for name in (key, *[a for a, target in (aliases or {}).items() if target == key]):
                name = name.lower()
                self._names[name] = price
                self._names.setdefault(_drop_date(name), price)
                fam = family_key(name)
                if fam is not None:
                    self._families.setdefault(fam, price)
        self._memo: dict[str | None, Price | None] = {}

    def lookup(self, model: str | None) -> Price | None:
        """The price of ``model`` (its list price, else rates learned for it), or None
        for an unknown model."""
        try:
            return self._memo[model]
        except KeyError:
            pass
        found = self.list_price(model)
        if found is None and model and self.learned:
            fit = self.learned.get(model.strip().lower())
            found = fit.price if fit is not None else None
        self._memo[model] = found
        return found

    def list_price(self, model: str | None) -> Price | None:
        """The shipped or user-file price that ``model`` matches, ignoring learned rates."""
        if not model:
            return None
        for name in _candidates(model):
            found = self._names.get(name)
            if found is not None:
                return found
        fam = family_key(name)
        return self._families.get(fam) if fam is not None else None

    def origin(self, model: str, rate: str) -> str:
        """Where a rate of the entry ``model`` (a key of :attr:`prices` or
        :attr:`learned`) came from: SHIPPED, USER or LEARNED."""
        if model in self.learned and model not in self.prices:
            return LEARNED
        return self.origins.get(model, {}).get(rate, SHIPPED)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, list prices first (in file order), then learned ones:
        ``{"model", "rates": {RATE: USD per million or None}, "from": {RATE: SHIPPED |
        USER | LEARNED}, "aliases": [...], "learned": None | {"records", "samples",
        "error"}}`` (the ``claudewrap prices --json`` form)."""
        out = []
        learned = [(m, fit) for m, fit in self.learned.items() if m not in self.prices]
        for model, price, fit in [*((m, p, None) for m, p in self.prices.items()),
                                  *((m, f.price, f) for m, f in learned)]:
            rates = {r: getattr(price, r) for r in _RATES}
            out.append({
                "model": model,
                "rates": rates,
                "from": {r: self.origin(model, r) for r, v in rates.items() if v is not None},
                "aliases": sorted(a for a, target in self.aliases.items() if target == model),
                "learned": None if fit is None else {"records": fit.records,
                                                     "samples": fit.samples,
                                                     "error": fit.error},
            })
        return out

    def with_learned(self, learned: Mapping[str, Learned]) -> PriceTable:
        """This table plus ``learned`` rates (for models without a list price)."""
        return PriceTable(self.prices, self.aliases, origins=self.origins,
                          learned={**self.learned, **learned})

    def cost(self, model: str | None, input_tokens: int = 0, output_tokens: int = 0,
             cache_read_tokens: int = 0, cache_write_tokens: int = 0) -> float | None:
        """USD for these counts; 0.0 for no tokens; None for an unknown model."""
        if not (input_tokens or output_tokens or cache_read_tokens or cache_write_tokens):
            return 0.0
        found = self.lookup(model)
        if found is None:
            return None
        return found.cost(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)


def _rate(path: Path, model: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PriceFileError(f"{path}: models.{model}.{key} must be a number >= 0;"
                             f" fix or remove that line")
    return float(value)


def _parse(path: Path, text: str, base: Mapping[str, Price] | None = None,
           origins: dict[str, dict[str, str]] | None = None, origin: str = SHIPPED
           ) -> tuple[dict[str, Price], dict[str, str]]:
    """The prices of a file over ``base``; ``origins`` (if given) learns ``origin``
    for each rate the file sets."""
    from claudewrap.store.config import parse_toml

    data = parse_toml(text, path, PriceFileError, "; fix it or remove it")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise PriceFileError(f"{path}: 'models' must be a table of [models.\"ID\"] tables")
    prices = dict(base or {})
    aliases: dict[str, str] = {}
    for model, entry in models.items():
        if not isinstance(entry, dict):
            raise PriceFileError(f"{path}: models.{model} must be a table; see the"
                                 f" built-in prices.toml for the format")
        rates: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "aliases":
                if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
                    raise PriceFileError(f"{path}: models.{model}.aliases must be a list"
                                         f" of names")
                aliases.update({a.lower(): model.lower() for a in value})
            elif key in _RATES:
                rates[key] = _rate(path, model, key, value)
            else:
                raise PriceFileError(f"{path}: models.{model} has an unknown key {key!r};"
                                     f" use {', '.join(_RATES)}, aliases")
        old = prices.get(model.lower())
        prices[model.lower()] = (replace(old, **rates) if old is not None
                                 else Price(model=model.lower(), **rates))
        if origins is not None:
            origins.setdefault(model.lower(), {}).update(dict.fromkeys(rates, origin))
    return prices, aliases


def user_prices_path() -> Path:
    """``$CLAUDEWRAP_PRICES``, else ``prices.toml`` in the user config folder."""
    from pathlib import Path

    return Path(user_prices_file())


def user_prices_file() -> str:
    """:func:`user_prices_path` as a string (no pathlib: the status line)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return os.path.expanduser(env)
    from claudewrap.store.config import user_dir  # platformdirs' answer, without it on Linux

    return os.path.join(user_dir("config"), "prices.toml")


def load_table(user_path: StrPath | None = None) -> PriceTable:
    """The built-in prices, overridden by ``user_path`` (or the user file) if it exists.

    Raises PriceFileError when a prices file is unreadable or malformed.
    """
    shipped = _shipped_path()
    try:  # a file beside the package (importlib.resources costs ~10 ms of each report)
        with open(shipped, encoding="utf-8") as fh:
            builtin = fh.read()
    except OSError:  # installed some other way (a zip): ask the import system
        from importlib.resources import files

        builtin = files("claudewrap.data").joinpath("prices.toml").read_text(encoding="utf-8")
    from pathlib import Path

    prices, aliases = _parse(Path("claudewrap/data/prices.toml"), builtin)
    path = Path(user_path) if user_path is not None else user_prices_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceFileError(f"cannot read the prices file {path}: {exc}; fix its"
                             f" permissions or remove it") from None
    origins: dict[str, dict[str, str]] = {}
    if text is not None:
        prices, more = _parse(path, text, prices, origins, USER)
        aliases.update(more)
    return PriceTable(prices, aliases, origins=origins)


def _shipped_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "prices.toml")


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


_CACHE_FORMAT = 1


def _cached_table(user_file: StrPath) -> PriceTable:
    """:func:`load_table`, kept parsed in the user's cache folder (``prices.json``)
    while the shipped and the user's prices files are as they were: parsing the
    TOML (tomllib's import with it) was 5-8 ms of every status-line call that
    sums today (bench/statusline.py --breakdown); the JSON takes ~0.3 ms.
    A cache that cannot be read or written is only not used; without a cache
    folder (``~/.cache``) there is none: a reader does not make one in $HOME."""
    from claudewrap.store import cjson as json
    from claudewrap.store.config import user_dir
    from claudewrap.store.files import read_regular

    user_path = os.fspath(user_file)
    shipped = _shipped_path()

    def files_now() -> list[Any]:
        return [_CACHE_FORMAT, shipped, _stamp(shipped), user_path, _stamp(user_path)]

    key = files_now()
    cache = os.path.join(user_dir("cache"), "prices.json")
    try:
        data = json.loads(read_regular(cache))
        if data["key"] == key:
            prices = {m: Price(m, *rates) for m, rates in data["prices"].items()}
            return PriceTable(prices, data["aliases"], origins=data["origins"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass  # missing, stale or damaged: parse the files
    table = load_table(user_path)
    if key[2] is not None and files_now() == key:  # neither file changed while it was read
        body = {"key": key, "aliases": table.aliases, "origins": table.origins,
                "prices": {m: [p.input, p.output, p.cache_write_5m, p.cache_write_1h,
                               p.cache_read] for m, p in table.prices.items()}}
        try:
            from claudewrap.store.journal import atomic_write

            try:  # our folder in an existing cache folder: never ~/.cache itself
                os.mkdir(os.path.dirname(cache), 0o700)
            except FileExistsError:
                pass
            atomic_write(cache, [json.dumps(body, separators=(",", ":")).encode()],
                         0o600, cache=True)
        except (OSError, ValueError):
            pass
    return table


_last_table: list[Any] = [None, None]  # (path, mtime) and its table: functools' lru_cache
# would import functools and collections (~1.5 ms of a status-line call)


def default_table() -> PriceTable:
    """The table in force: built-in plus the user file (reloaded when that file changes)."""
    path = user_prices_file()
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = -1.0
    if _last_table[0] != (path, mtime):
        _last_table[:] = [(path, mtime), _cached_table(path)]
    table: PriceTable = _last_table[1]
    return table


def price(model: str | None, input_tokens: int, output_tokens: int, cache_read_tokens: int,
          cache_write_tokens: int, *, table: PriceTable | None = None) -> float | None:
    """USD for these token counts of ``model``; None when the model's price is unknown."""
    return (table or default_table()).cost(model, input_tokens, output_tokens,
                                           cache_read_tokens, cache_write_tokens)


def cost_of(record: UsageRecord, *, table: PriceTable | None = None
            ) -> tuple[float | None, bool]:
    """``(cost, estimated)`` of a record.

    The cost Claude Code printed (``estimated`` False) when the record has one;
    otherwise the price of its tokens from the table (``estimated`` True), which
    is None for an unknown model. A cost claudewrap itself stored earlier
    (``cost_estimated``) is priced again from the current table.
    """
    if record.cost_usd is not None and not record.cost_estimated:
        return record.cost_usd, False
    return price(record.model, record.input_tokens, record.output_tokens,
                 record.cache_read_tokens, record.cache_write_tokens, table=table), True


__all__ = ["LEARNED", "SHIPPED", "USER", "Learned", "Price", "PriceFileError", "PriceTable",
           "cost_of", "default_table", "family_key", "load_table", "price", "user_prices_path"]
