"""`claudewrap usage --analysis`: the printed table, `--json` and a hand computation agree.

The journal is small enough to price by hand from prices.toml's rates (USD per
million: sonnet-4-5 3/15/0.30/3.75, opus-5-5 4/20/0.20/5, haiku-4-5 1/5/0.10/1.25).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from claudewrap.store.records import UsageRecord
from tests.conftest import cw

M = 1_000_000


def rec(session: str, model: str, project: str, i: int, o: int, cr: int = 0, cw_: int = 0,
        cost: float | None = None) -> str:
    return UsageRecord(ts="2026-11-02T10:00:00.000Z", session=session, source="manual",
                       model=model, input_tokens=i, output_tokens=o, cache_read_tokens=cr,
                       cache_write_tokens=cw_, cost_usd=cost, project=project).to_json() + "\n"


@pytest.fixture
def journal(env: dict[str, str]) -> Path:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    path.write_text("".join([
        rec("s1", "claude-sonnet-4-5", "api", 1_000, 2_000, 1_000_000, 10_000),  # estimated
        rec("s2", "claude-opus-5-5", "web", 2_000, 1_000, cost=1.5),  # printed
        rec("s3", "claude-haiku-4-5", "api", 100, 100),
        rec("s4", "claude-sonnet-4-5", "web", 50_000, 4_000, 200_000, 0),
    ]), encoding="utf-8")
    return path


def by_hand() -> dict[str, Any]:
    s1 = (1_000 * 3 + 2_000 * 15 + 1_000_000 * 0.30 + 10_000 * 3.75) / M
    s3 = (100 * 1 + 100 * 5) / M
    s4 = (50_000 * 3 + 4_000 * 15 + 200_000 * 0.30) / M
    api, web = s1 + s3, 1.5 + s4
    total = api + web
    return {
        "cost": {"api": api, "web": web, "total": total},
        "share": {"api": 100 * api / total, "web": 100 * web / total, "total": 100.0},
        "per_1k": {"api": api * 1000 / 2_100, "web": web * 1000 / 5_000,
                   "total": total * 1000 / 7_100},
        "ratio": {"api": 1_000_000 / (1_100 + 1_000_000 + 10_000),
                  "web": 200_000 / (52_000 + 200_000),
                  "total": 1_200_000 / (53_100 + 1_200_000 + 10_000)},
        "saved": {"api": 1_000_000 * (3 - 0.30) / M, "web": 200_000 * (3 - 0.30) / M,
                  "total": 1_200_000 * (3 - 0.30) / M},
        # every token of the group at haiku-4-5's rates
        "haiku": {"api": (1_100 * 1 + 2_100 * 5 + 1_000_000 * 0.10 + 10_000 * 1.25) / M,
                  "web": (52_000 * 1 + 5_000 * 5 + 200_000 * 0.10) / M},
    }


def money(text: str) -> float:
    m = re.fullmatch(r"~?\$([\d,]+\.\d+)(\+\?)?", text)
    assert m, f"not an amount: {text!r}"
    return float(m.group(1).replace(",", ""))


def sections(text: str) -> list[dict[str, list[str]]]:
    """Each printed table (blank-line separated): first cell -> the other cells."""
    out = []
    for block in text.split("\n\n"):
        rows = {}
        for line in block.splitlines()[1:]:
            cells = re.split(r"\s{2,}", line.strip())
            if len(cells) > 1:
                rows[cells[0]] = cells[1:]
        out.append(rows)
    return out


def test_analysis_table_agrees_with_json_and_hand_computation(env: dict[str, str],
                                                              journal: Path) -> None:
    hand = by_hand()
    data = json.loads(cw(["usage", "--analysis", "--by", "project", "--json"], env).stdout)
    shown = cw(["usage", "--analysis", "--by", "project"], env)
    assert shown.returncode == 0, shown.stderr
    assert data["by"] == ["project"]
    assert data["compared_models"] == ["claude-opus-5-5", "claude-sonnet-5",
                                       "claude-haiku-4-5"]
    groups = {g["key"]: g for g in data["groups"]}
    assert [g["key"] for g in data["groups"]] == ["web", "api"]  # by cost
    groups["total"] = data["total"]
    for key in ("api", "web", "total"):
        g = groups[key]
        assert g["cost_usd"] == pytest.approx(hand["cost"][key], abs=1e-6)
        assert g["share_percent"] == pytest.approx(hand["share"][key], abs=0.01)
        assert g["cost_per_1k_output_usd"] == pytest.approx(hand["per_1k"][key], abs=1e-6)
        assert g["cache_read_ratio"] == pytest.approx(hand["ratio"][key], abs=1e-6)
        assert g["cache_saved_usd"] == pytest.approx(hand["saved"][key], abs=1e-6)
    for key in ("api", "web"):
        assert groups[key]["on_models"]["claude-haiku-4-5"] == pytest.approx(
            hand["haiku"][key], abs=1e-6)
    for model in data["compared_models"]:
        assert data["total"]["on_models"][model] == pytest.approx(
            groups["api"]["on_models"][model] + groups["web"]["on_models"][model], abs=1e-6)

    main, compare, top = sections(shown.stdout)[:3]
    assert set(main) == {"api", "web", "total"}
    for key, cells in main.items():
        cost, share, per_1k, ratio, saved = cells
        g = groups[key]
        assert money(cost) == pytest.approx(g["cost_usd"], abs=0.005)
        assert cost.startswith("~") == (g["cost_estimated_usd"] > 0)
        assert float(share.rstrip("%")) == pytest.approx(g["share_percent"], abs=0.05)
        assert money(per_1k) == pytest.approx(g["cost_per_1k_output_usd"], abs=0.00005)
        assert float(ratio.rstrip("%")) == pytest.approx(100 * g["cache_read_ratio"], abs=0.05)
        assert money(saved) == pytest.approx(g["cache_saved_usd"], abs=0.005)
    for key, cells in compare.items():
        assert money(cells[0]) == pytest.approx(groups[key]["cost_usd"], abs=0.005)
        for cell, model in zip(cells[1:], data["compared_models"]):
            assert money(cell) == pytest.approx(groups[key]["on_models"][model], abs=0.005)
    assert list(top) == [s["session"] for s in data["top_sessions"]] == ["s2", "s1", "s4", "s3"]
    assert top["s2"][2] == "opus-5-5"
    assert money(top["s4"][0]) == pytest.approx(hand["cost"]["web"] - 1.5, abs=0.005)


def test_cost_analysis_is_the_same_option_and_groups_by_model_by_default(
        env: dict[str, str], journal: Path) -> None:
    a = json.loads(cw(["usage", "--analysis", "--json"], env).stdout)
    b = json.loads(cw(["usage", "--cost-analysis", "--json"], env).stdout)
    assert a == b
    assert a["by"] == ["model"]
    opus = next(g for g in a["groups"] if g["key"] == "claude-opus-5-5")
    assert opus["on_models"]["claude-opus-5-5"] == pytest.approx((2_000 * 4 + 1_000 * 20) / M)
    assert opus["share_percent"] == pytest.approx(100 * 1.5 / by_hand()["cost"]["total"],
                                                  abs=0.01)


def test_most_expensive_sessions_stop_at_five(env: dict[str, str]) -> None:
    Path(env["CLAUDEWRAP_JOURNAL"]).write_text("".join(
        rec(f"s{n}", "claude-haiku-4-5", "p", 1_000 * n, 0) for n in range(1, 9)))
    data = json.loads(cw(["usage", "--analysis", "--json"], env).stdout)
    assert [s["session"] for s in data["top_sessions"]] == ["s8", "s7", "s6", "s5", "s4"]


def test_analysis_with_csv_or_blocks_is_refused_in_one_line(env: dict[str, str],
                                                            journal: Path) -> None:
    for extra in (["--csv"], ["--by", "block"]):
        result: subprocess.CompletedProcess[str] = cw(["usage", "--analysis", *extra], env)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert "--analysis" in result.stderr.splitlines()[-1]


def test_analysis_of_an_empty_selection_says_so(env: dict[str, str], journal: Path) -> None:
    result = cw(["usage", "--analysis", "--project", "nowhere"], env)
    assert result.returncode == 0
    assert result.stdout.startswith("No usage matches --project nowhere")
