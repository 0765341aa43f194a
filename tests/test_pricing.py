"""Pricing: every model family, the matching rules, unknown models, the user's prices file."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudewrap.store.records import UsageRecord
from claudewrap.usage.price_fit import fit_rates, learn_prices
from claudewrap.usage.pricing import (
    Learned,
    Price,
    PriceFileError,
    cost_of,
    default_table,
    family_key,
    load_table,
    price,
)
from claudewrap.usage.state import UsageState

M = 1_000_000

# (model id as Claude Code / a provider may print it, input, output, cache write 5m, cache read)
LIST_PRICES = [
    ("claude-opus-5-5", 4, 20, 5, 0.20),  # Claude Code 2.1.332's default
    ("claude-sonnet-5", 3, 15, 3.75, 0.30),
    ("claude-fable-5", 10, 50, 12.5, 1.0),
    ("claude-mythos-5", 10, 50, 12.5, 1.0),
    ("claude-opus-4-20250514", 15, 75, 18.75, 1.50),
    ("claude-opus-4-1-20250805", 15, 75, 18.75, 1.50),
    ("claude-opus-4-5-20251101", 5, 25, 6.25, 0.50),
    ("claude-opus-4-6", 5, 25, 6.25, 0.50),
    ("claude-opus-4-7-20260416", 5, 25, 6.25, 0.50),
    ("claude-opus-4-8", 5, 25, 6.25, 0.50),
    ("claude-sonnet-4-20250514", 3, 15, 3.75, 0.30),
    ("claude-sonnet-4-5-20250929", 3, 15, 3.75, 0.30),
    ("claude-sonnet-4-6", 3, 15, 3.75, 0.30),
    ("claude-haiku-4-5-20251001", 1, 5, 1.25, 0.10),
    ("claude-3-5-haiku-20241022", 0.80, 4, 1.00, 0.08),
    ("claude-3-7-sonnet-20250219", 3, 15, 3.75, 0.30),
    ("claude-3-5-sonnet-20241022", 3, 15, 3.75, 0.30),
    ("claude-3-opus-20240229", 15, 75, 18.75, 1.50),
    ("claude-3-haiku-20240307", 0.25, 1.25, 0.30, 0.03),
]


@pytest.fixture(autouse=True)
def no_user_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(tmp_path / "absent.toml"))


@pytest.mark.parametrize(("model", "inp", "out", "write", "read"), LIST_PRICES)
def test_every_listed_model_has_its_list_price(model: str, inp: float, out: float,
                                               write: float, read: float) -> None:
    assert price(model, M, 0, 0, 0) == pytest.approx(inp)
    assert price(model, 0, M, 0, 0) == pytest.approx(out)
    assert price(model, 0, 0, 0, M) == pytest.approx(write)
    assert price(model, 0, 0, M, 0) == pytest.approx(read)


def test_cache_writes_are_priced_at_the_five_minute_rate() -> None:
    p = default_table().lookup("claude-sonnet-4-5")
    assert p is not None and p.cache_write_1h == 6.0
    assert price("claude-sonnet-4-5", 0, 0, 0, M) == pytest.approx(3.75)


@pytest.mark.parametrize(("model", "expected"), [
    ("claude-opus-4-8[1m]", "claude-opus-4-8"),
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("claude-sonnet-4-5-20990101", "claude-sonnet-4-5-20250929"),
    ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
    ("claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"),
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"),
    ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-20241022"),
    ("CLAUDE-HAIKU-4-5", "claude-haiku-4-5-20251001"),
    ("claude-opus-4", "claude-opus-4-20250514"),
    ("claude-opus-4-1", "claude-opus-4-1-20250805"),
    ("claude-4-sonnet", "claude-sonnet-4-20250514"),
    ("claude-sonnet-4.5", "claude-sonnet-4-5-20250929"),
    ("claude-3-opus-latest", "claude-3-opus-20240229"),
    ("claude-3-sonnet", "claude-3-sonnet-20240229"),
    ("claude-3-haiku", "claude-3-haiku-20240307"),
    ("claude-2.1", "claude-2.1"),
    ("claude-2", "claude-2.1"),
    ("anthropic.claude-v2:1", "claude-2.1"),
    ("claude-instant-1.2", "claude-instant-1.2"),
    ("anthropic.claude-instant-v1", "claude-instant-1.2"),
])
def test_ids_match_exactly_then_undated_then_by_family(model: str, expected: str) -> None:
    found = default_table().lookup(model)
    assert found is not None and found.model == expected


def test_seed_models_have_their_prices() -> None:
    assert price("claude-2.1", M, M, 0, 0) == pytest.approx(8 + 24)
    assert price("claude-instant-1.2", M, M, 0, 0) == pytest.approx(0.80 + 2.40)
    assert price("claude-3-sonnet-20240229", M, M, 0, 0) == pytest.approx(3 + 15)


@pytest.mark.parametrize("model", ["claude-opus-9-1", "claude-sonnet", "<synthetic>", "gpt-4o",
                                   "claude-haiku-9", "", None])
def test_an_unknown_model_has_no_price_never_zero(model: str | None) -> None:
    assert price(model, 1000, 10, 0, 0) is None


def test_no_tokens_cost_nothing_whatever_the_model() -> None:
    assert price("<synthetic>", 0, 0, 0, 0) == 0.0


def test_a_missing_rate_makes_the_cost_unknown() -> None:
    # Claude 3 Sonnet had no prompt caching: a cache read cannot be priced.
    assert price("claude-3-sonnet-20240229", 1000, 0, 5, 0) is None


def test_family_key_reads_both_naming_styles() -> None:
    assert family_key("claude-sonnet-4-5-20250929") == ("sonnet", 4, 5)
    assert family_key("claude-3-5-haiku") == ("haiku", 3, 5)
    assert family_key("claude-opus-4") == ("opus", 4, 0)
    assert family_key("gpt-4") is None


def test_user_file_overrides_a_field_and_adds_models(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "prices.toml"
    user.write_text('[models."claude-sonnet-4-5-20250929"]\ninput = 2.0\n\n'
                    '[models."claude-opus-9-1"]\ninput = 4\noutput = 20\n'
                    'aliases = ["opus-next"]\n')
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(user))
    assert price("claude-sonnet-4-5", M, M, 0, 0) == pytest.approx(2 + 15)  # output kept
    assert price("claude-opus-9-1", M, M, 0, 0) == pytest.approx(24)
    assert price("opus-next", M, 0, 0, 0) == pytest.approx(4)
    assert price("claude-opus-9-1", 0, 0, 1, 0) is None  # no cache rate given
    table = default_table()
    assert table.origin("claude-sonnet-4-5-20250929", "input") == "user"
    assert table.origin("claude-sonnet-4-5-20250929", "output") == "shipped"
    assert table.origin("claude-opus-9-1", "output") == "user"
    user.write_text('[models."claude-opus-9-1"]\ninput = 6\noutput = 20\n')
    import os
    os.utime(user, (1, 1))  # a changed file is read again
    assert price("claude-opus-9-1", M, 0, 0, 0) == pytest.approx(6)


@pytest.mark.parametrize("text", ["not toml [", '[models."x"]\ninput = "cheap"\n',
                                  '[models."x"]\nprice = 1\n', "models = 3\n",
                                  '[models."x"]\ninput = -1\n'])
def test_a_broken_user_file_is_an_error_that_names_it(tmp_path: Path, text: str) -> None:
    user = tmp_path / "prices.toml"
    user.write_text(text)
    with pytest.raises(PriceFileError, match="prices.toml"):
        load_table(user)


def _rec(**kw: object) -> UsageRecord:
    return UsageRecord(ts="2026-07-01T10:00:00.000Z", session="s", source="pty", **kw)  # type: ignore[arg-type]


def test_cost_of_prefers_the_printed_cost() -> None:
    rec = _rec(model="claude-sonnet-4-5", input_tokens=M, cost_usd=0.55)
    assert cost_of(rec) == (0.55, False)


def test_cost_of_prices_what_was_not_printed() -> None:
    cost, estimated = cost_of(_rec(model="claude-sonnet-4-5", input_tokens=M, output_tokens=M))
    assert estimated and cost == pytest.approx(18.0)


def test_cost_of_reprices_a_stored_estimate_and_knows_unknowns() -> None:
    rec = _rec(model="claude-haiku-4-5", input_tokens=M, cost_usd=99.0, cost_estimated=True)
    cost, estimated = cost_of(rec)
    assert estimated and cost == pytest.approx(1.0)
    assert cost_of(_rec(model="mystery", input_tokens=5)) == (None, True)


# Requests of claude-opus-5-5 as Claude Code 2.1.332 reported them over OpenTelemetry
# (../shared/captures/claude-code-2.1.332/otlp_logs_*.json and the stream-json
# result): input, output, cache read, cache write, cost_usd.
CAPTURED_OPUS_5_5 = [
    (38172, 496, 25691, 755, 0.1715212),
    (36803, 7563, 13654, 9550, 0.3489528),
    (1234, 567, 8901, 2345, 0.029781199999999997),
    (28524, 7259, 15664, 177, 0.2632938),
]
OPUS_5_5 = (4.0, 20.0, 0.20, 5.0)  # per million: input, output, cache read, cache write


def _cost(rates: tuple[float, ...], i: int, o: int, cr: int, cw: int) -> float:
    return (i * rates[0] + o * rates[1] + cr * rates[2] + cw * rates[3]) / M


def test_shipped_opus_5_5_price_reproduces_claude_codes_printed_costs() -> None:
    for i, o, cr, cw, printed in CAPTURED_OPUS_5_5:
        assert price("claude-opus-5-5", i, o, cr, cw) == pytest.approx(printed, rel=1e-9)
        assert price("claude-opus-5-5[1m]", i, o, cr, cw) == pytest.approx(printed, rel=1e-9)


def test_fit_recovers_claude_codes_rates_from_its_printed_costs() -> None:
    samples = [*CAPTURED_OPUS_5_5, (5000, 100, 0, 4000, _cost(OPUS_5_5, 5000, 100, 0, 4000))]
    fit = fit_rates(samples)
    assert fit is not None
    rates, error = fit
    assert rates == pytest.approx(OPUS_5_5)
    assert error < 1e-9


def test_fit_needs_one_sample_more_than_rates() -> None:
    assert fit_rates(CAPTURED_OPUS_5_5) is None  # four rates, four samples: unchecked


def test_fit_refuses_counts_that_cannot_tell_rates_apart() -> None:
    # Output always twice the input: any split of 0.000044 $/token between them fits.
    samples = [(n, 2 * n, 0, 0, n * 44 / M) for n in (100, 2000, 30000, 7)]
    assert fit_rates(samples) is None


def test_fit_refuses_costs_that_no_rates_explain() -> None:
    noisy = [(i, o, cr, cw, c * f) for (i, o, cr, cw, c), f in
             zip(CAPTURED_OPUS_5_5 * 2, (0.5, 1.7, 1.0, 0.6, 1.4, 0.9, 1.2, 0.7))]
    assert fit_rates(noisy) is None


def test_fit_leaves_unseen_rates_unknown_and_never_negative() -> None:
    samples = [(i, o, 0, 0, _cost(OPUS_5_5, i, o, 0, 0)) for i, o, *_ in CAPTURED_OPUS_5_5]
    fit = fit_rates(samples)
    assert fit is not None and fit[0] == pytest.approx((4.0, 20.0, None, None))
    # Input tokens that cost nothing: the fit says 0, not a negative rate.
    free_input = [(i, o, 0, 0, o * 20 / M) for i, o, *_ in CAPTURED_OPUS_5_5]
    fit = fit_rates(free_input)
    assert fit is not None and fit[0][:2] == pytest.approx((0.0, 20.0))


def _otel(session: str, day: int, model: str, i: int, o: int, cr: int, cw: int,
          cost: float | None, source: str = "otel") -> UsageRecord:
    return UsageRecord(ts=f"2026-07-{day:02d}T10:00:00.000Z", session=session, source=source,
                       model=model, input_tokens=i, output_tokens=o, cache_read_tokens=cr,
                       cache_write_tokens=cw, cost_usd=cost, request_id=f"req_{session}_{day}")


def test_learned_rates_price_only_models_without_a_list_price() -> None:
    rates = (6.0, 30.0, 0.6, 7.5)
    state = UsageState()
    state.add_records(_otel(f"s{n}", n + 1, model, i + n, o * (n + 1), cr, cw + 10 * n,
                            _cost(rates, i + n, o * (n + 1), cr, cw + 10 * n))
                      for n, (i, o, cr, cw, _) in enumerate(CAPTURED_OPUS_5_5 * 2)
                      for model in ("claude-opus-9-1", "claude-sonnet-4-6"))
    table = learn_prices(state, default_table())
    assert set(table.learned) == {"claude-opus-9-1"}  # sonnet 4.6 keeps its list price
    fit = table.learned["claude-opus-9-1"]
    assert fit.records == 8 and fit.samples == 8
    learned = table.lookup("claude-opus-9-1")
    assert learned is not None
    assert (learned.input, learned.output, learned.cache_read, learned.cache_write_5m) == \
        pytest.approx(rates)
    assert table.origin("claude-opus-9-1", "input") == "learned"
    assert table.lookup("claude-opus-9") is None  # its own name only, never a family
    assert table.lookup("claude-sonnet-4-6") == default_table().lookup("claude-sonnet-4-6")


def test_a_list_price_wins_over_a_learned_one() -> None:
    base = default_table()
    odd = Learned(Price(model="claude-opus-5-5", input=99.0), records=9, samples=9, error=0.0)
    assert base.with_learned({"claude-opus-5-5": odd}).lookup("claude-opus-5-5") == \
        base.lookup("claude-opus-5-5")


def test_rounded_screen_totals_teach_nothing() -> None:
    rates = (6.0, 30.0, 0.6, 7.5)
    state = UsageState()
    records = []
    for n, (i, o, cr, cw, _) in enumerate(CAPTURED_OPUS_5_5 * 2):
        rec = _otel(f"s{n}", n + 1, "claude-opus-9-1", i, o + n, cr, cw,
                    _cost(rates, i, o + n, cr, cw), source="pty")
        records.append(UsageRecord(**{**rec.to_dict(), "kind": "total", "approximate": True,
                                      "request_id": None}))
    state.add_records(records)
    assert learn_prices(state, default_table()).learned == {}


def test_the_parsed_prices_kept_in_the_cache_are_the_files_prices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The price table read back from the cache folder (prices.json) is the table
    the TOML files give, follows an edit of the user's file, and a damaged cache
    costs nothing but the parse."""
    import json
    import os

    from claudewrap.usage import pricing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    user = tmp_path / "prices.toml"
    user.write_text('[models."claude-sonnet-4-5"]\ninput = 9.5\n')
    # No cache folder: none is made (a reader leaves $HOME as it was).
    pricing._cached_table(user)
    assert not (tmp_path / "cache").exists()
    (tmp_path / "cache").mkdir()
    user.write_text('[models."claude-sonnet-4-5"]\ninput = 9.5\n'
                    '[models."house-model"]\ninput = 1\noutput = 2\naliases = ["hm"]\n')
    cache = tmp_path / "cache" / "claudewrap" / "prices.json"

    def same(a: pricing.PriceTable, b: pricing.PriceTable) -> None:
        assert a.entries() == b.entries()
        assert a.aliases == b.aliases and a.prices == b.prices
        for model in ("claude-sonnet-4-5", "hm", "claude-opus-5-5", "claude-haiku-4-5-20251001"):
            assert a.lookup(model) == b.lookup(model)

    truth = pricing.load_table(user)
    first = pricing._cached_table(user)  # parses and keeps it
    assert cache.exists() and (cache.stat().st_mode & 0o777) == 0o600
    same(first, truth)
    same(pricing._cached_table(user), truth)  # read from the cache
    assert pricing._cached_table(user).lookup("hm") == pricing.Price("house-model", 1.0, 2.0)

    user.write_text('[models."claude-sonnet-4-5"]\ninput = 7\n')  # an edit: parsed again
    os.utime(user, ns=(1, 1))
    assert pricing._cached_table(user).lookup("claude-sonnet-4-5").input == 7.0
    assert pricing._cached_table(user).lookup("hm") is None
    same(pricing._cached_table(user), pricing.load_table(user))

    for damage in (b"{", b"[]", json.dumps({"key": 1}).encode(), b"\xff"):
        cache.write_bytes(damage)
        same(pricing._cached_table(user), pricing.load_table(user))
