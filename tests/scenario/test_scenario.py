"""Tests of perpsim.scenario: loading, extends, overrides, validation messages, the schema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydantic
import pytest
from support import REPO

from perpsim.engine.venues.mcdex_v1.governance import AMMGovernance, PerpetualGovernance
from perpsim.errors import ConfigError
from perpsim.scenario import (
    SCENARIO_DIR,
    ChoiceDist,
    ConstantDist,
    LognormalDist,
    NormalDist,
    Scenario,
    SetGovernanceEvent,
    UniformDist,
    WhaleParams,
    apply_overrides,
    apply_typed_overrides,
    list_scenarios_command,
    load_raw_scenario,
    load_scenario,
    resolve_scenario_path,
    sample_param,
    scenario_from_raw,
    shipped_scenarios,
    validate_command,
)

BROKEN_DIR = REPO / "tests" / "data" / "broken_scenarios"
BROKEN_FILES = sorted(BROKEN_DIR.glob("*.yaml"))

MINIMAL = """\
name: minimal
clock:
  start: "2024-01-01T00:00:00Z"
  tick: 60
  ticks: 1440
price_path:
  kind: constant
  price: 2000
"""


def expectations(path: Path) -> list[str]:
    """The ``# expect: ...`` strings of a broken scenario."""
    found = re.findall(r"^# expect: (.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [e.strip() for e in found]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Writes a file into a temporary folder and returns its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def error_of(path: str | Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_scenario(path, overrides)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Shipped scenarios
# ---------------------------------------------------------------------------------------------


def test_the_readme_table_lists_every_shipped_scenario() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Shipped scenarios", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9_/]+)\.yaml` \|", section, flags=re.MULTILINE))
    assert listed == {
        p.relative_to(SCENARIO_DIR).with_suffix("").as_posix() for p in shipped_scenarios()
    }


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_shipped_scenario_validates(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description.strip()
    assert scenario.clock.n_ticks >= 1
    assert scenario.agents


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_shipped_scenario_begins_with_a_question(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert "Question:" in text
    assert "Look at:" in text


def test_historical_scenarios_use_shipped_data() -> None:
    black = load_scenario("black_thursday")
    may = load_scenario("may19_2021")
    assert black.price_path.kind == "historical"
    assert may.price_path.kind == "historical"
    for scenario in (black, may):
        file = Path(scenario.price_path.file)  # type: ignore[union-attr]
        assert file.is_file()
        assert file.parent == SCENARIO_DIR / "data"
    assert black.clock.start == 1_583_884_800  # 2020-03-11T00:00:00Z
    assert may.clock.start == 1_621_382_400  # 2021-05-19T00:00:00Z


def test_global_settlement_scenario_settles_within_the_run() -> None:
    scenario = load_scenario("global_settlement")
    kinds = [e.kind for e in scenario.timeline()]
    assert "begin_global_settlement" in kinds
    admin = scenario.population("admin")
    settle = next(e for e in scenario.events if e.kind == "begin_global_settlement")
    assert settle.at + admin.params.complete_after <= scenario.clock.span


def test_list_scenarios_lists_every_shipped_file() -> None:
    lines: list[str] = []
    assert list_scenarios_command(lines.append) == 0
    table = "\n".join(lines)
    for name in (p.stem for p in shipped_scenarios()):
        assert f"{name}.yaml" in table
    assert "Black Thursday 2020-03-12" in table


# ---------------------------------------------------------------------------------------------
# The corpus of broken scenarios
# ---------------------------------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert BROKEN_FILES, "the broken-scenario corpus was not found"
    for path in BROKEN_FILES:
        assert expectations(path), f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.stem)
def test_broken_scenario_is_rejected_naming_the_key(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate_command([str(path)]) == 2
    out, err = capsys.readouterr()
    assert "OK" not in out
    for expected in expectations(path):
        assert expected in err, f"{expected!r} not in:\n{err}"
    for line in err.strip().splitlines():
        assert line.startswith(f"{path}: "), line


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def test_every_problem_is_reported_one_per_line(write: Callable[[str, str], Path]) -> None:
    path = write(
        "many.yaml",
        MINIMAL
        + "seed: -1\nvenue:\n  insurance_fund: .nan\noutput:\n  format: xml\nagents:\n"
        + "  - name: a\n    type: noise_trader\n    count: -2\n",
    )
    lines = error_of(path).splitlines()
    keys = [line.split(": ")[1] for line in lines]
    assert keys == ["seed", "venue.insurance_fund", "agents.0.count", "output.format"]
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_message_has_value_allowed_and_line(write: Callable[[str, str], Path]) -> None:
    path = write("m.yaml", MINIMAL + "output:\n  record_every: 0\n")
    assert error_of(path) == (
        f"{path}: output.record_every: must be >= 1 (got 0; allowed: >= 1; line 10)"
    )


def test_inherited_value_names_the_file_it_came_from(write: Callable[[str, str], Path]) -> None:
    write("parent.yaml", MINIMAL + "seed: -5\n")
    child = write("child.yaml", "extends: parent.yaml\nname: child\n")
    message = error_of(child)
    assert message.startswith(f"{child}: seed: must be >= 0 (got -5;")
    assert "parent.yaml line 9" in message


def test_cross_field_governance_error_names_the_key_set_here(
    write: Callable[[str, str], Path],
) -> None:
    write("parent.yaml", MINIMAL + "venue:\n  governance:\n    maintenance_margin_rate: 0.05\n")
    child = write(
        "child.yaml", "extends: parent.yaml\nvenue:\n  governance:\n    initial_margin_rate: 0.04\n"
    )
    message = error_of(child)
    assert f"{child}: venue.governance.initial_margin_rate: margin rates" in message
    assert "involves venue.governance.maintenance_margin_rate" in message


def test_error_under_agents_names_the_population(write: Callable[[str, str], Path]) -> None:
    path = write(
        "p.yaml",
        MINIMAL + "agents:\n  - name: bots\n    type: keeper\n    params:\n      gas_cost: -1\n",
    )
    message = error_of(path)
    assert "agents.0.params.gas_cost" in message
    assert "population 'bots'" in message


def test_a_product_the_venue_does_not_trade_is_refused(write: Callable[[str, str], Path]) -> None:
    path = write(
        "p.yaml", MINIMAL + "agents:\n  - name: bots\n    type: keeper\n    product: squared\n"
    )
    message = error_of(path)
    assert "agents.0.product" in message
    assert "venue kind 'mcdex_v1' has no product 'squared'" in message
    assert "perpetual" in message


def test_a_population_bound_to_the_venues_product_trades_it(
    write: Callable[[str, str], Path],
) -> None:
    from perpsim.model import PerpModel

    path = write(
        "p.yaml", MINIMAL + "agents:\n  - name: bots\n    type: keeper\n    product: perpetual\n"
    )
    scenario = load_scenario(path)
    assert scenario.agents[0].product == "perpetual"
    model = PerpModel(scenario, seed=1)
    (keeper,) = model.agents_by_population["bots"]
    assert keeper.venue is model.venue


def test_zero_byte_file_is_empty(write: Callable[[str, str], Path]) -> None:
    path = write("empty.yaml", "")
    assert "the file is empty" in error_of(path)


def test_missing_file_suggests_a_shipped_scenario() -> None:
    message = error_of("black_thursdy")
    assert "file not found" in message
    assert "did you mean 'black_thursday'?" in message


def test_directory_and_binary_files_are_config_errors(tmp_path: Path) -> None:
    assert "is a directory" in error_of(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    assert "not a UTF-8 text file" in error_of(binary)


def test_non_string_key_is_rejected_with_its_line(write: Callable[[str, str], Path]) -> None:
    path = write("k.yaml", MINIMAL + "1: one\n")
    assert "line 9" in error_of(path)
    assert "not a string" in error_of(path)


# ---------------------------------------------------------------------------------------------
# YAML details
# ---------------------------------------------------------------------------------------------


def test_exponent_floats_and_times_are_read_as_intended(write: Callable[[str, str], Path]) -> None:
    path = write(
        "f.yaml",
        MINIMAL.replace('"2024-01-01T00:00:00Z"', "2024-01-01T00:00:00Z")
        + "venue:\n  governance:\n    lot_size: 1e-3\n    trading_lot_size: 1.0e-2\n",
    )
    raw = load_raw_scenario(path)
    assert raw["venue"]["governance"]["lot_size"] == 0.001
    assert raw["clock"]["start"] == "2024-01-01T00:00:00Z"  # no implicit datetime
    scenario = load_scenario(path)
    assert scenario.venue.perpetual_governance.trading_lot_size == 0.01
    assert scenario.clock.start == 1_704_067_200


def test_yaml_anchors_and_merge_keys_work(write: Callable[[str, str], Path]) -> None:
    path = write(
        "a.yaml",
        MINIMAL
        + "agents:\n"
        + "  - &n {name: a, type: noise_trader, params: {size: 2}}\n"
        + "  - {<<: *n, name: b}\n",
    )
    scenario = load_scenario(path)
    assert [p.name for p in scenario.agents] == ["a", "b"]
    assert scenario.agents[1].params.size == 2


# ---------------------------------------------------------------------------------------------
# extends
# ---------------------------------------------------------------------------------------------


def test_extends_merges_mappings_replaces_lists_and_merges_agents_by_name(
    write: Callable[[str, str], Path],
) -> None:
    write(
        "parent.yaml",
        MINIMAL
        + """\
venue:
  governance:
    initial_margin_rate: 0.2
    pool_fee_rate: 0.001
agents:
  - name: noise
    type: noise_trader
    count: 10
    params: {size: 3, leverage: 2}
  - name: keepers
    type: keeper
events:
  - {at: 1h, kind: oracle_outage, duration: 10m}
  - {at: 2h, kind: keeper_outage, duration: 10m}
""",
    )
    child = write(
        "child.yaml",
        """\
extends: parent.yaml
name: child
venue:
  governance:
    pool_fee_rate: 0.002
agents:
  - name: noise
    params: {leverage: 4}
  - name: lps
    type: liquidity_provider
events:
  - {at: 3h, kind: price_shock, change: -0.1}
""",
    )
    scenario = load_scenario(child)
    assert scenario.name == "child"
    assert dict(scenario.venue.governance) == {"initial_margin_rate": 0.2, "pool_fee_rate": 0.002}
    assert [p.name for p in scenario.agents] == ["noise", "keepers", "lps"]
    noise = scenario.population("noise")
    assert (noise.count, noise.params.size, noise.params.leverage) == (10, 3.0, 4.0)
    assert [e.kind for e in scenario.events] == ["price_shock"]


def test_extends_changing_kind_or_type_replaces_the_mapping(
    write: Callable[[str, str], Path],
) -> None:
    write(
        "parent.yaml",
        MINIMAL.replace("kind: constant\n  price: 2000", "kind: gbm\n  s0: 2000\n  sigma: 0.5")
        + "agents:\n  - name: x\n    type: noise_trader\n    params:\n"
        + "      size: {dist: lognormal, median: 2, sigma: 0.5}\n",
    )
    child = write(
        "child.yaml",
        "extends: parent.yaml\nprice_path: {kind: constant, price: 100}\n"
        "agents:\n  - name: x\n    type: keeper\n",
    )
    scenario = load_scenario(child)
    assert scenario.price_path.kind == "constant"
    assert scenario.population("x").type == "keeper"
    child2 = write(
        "child2.yaml",
        "extends: parent.yaml\nagents:\n  - name: x\n    params:\n"
        "      size: {dist: uniform, low: 1, high: 2}\n",
    )
    assert load_scenario(child2).population("x").params.size == UniformDist(
        dist="uniform", low=1, high=2
    )


def test_extends_setting_ticks_drops_the_inherited_duration(
    write: Callable[[str, str], Path],
) -> None:
    write("parent.yaml", MINIMAL.replace("ticks: 1440", "duration: 1d"))
    child = write("child.yaml", "extends: parent.yaml\nclock:\n  ticks: 10\n")
    clock = load_scenario(child).clock
    assert (clock.duration, clock.ticks, clock.tick) == (None, 10, 60)


def test_extends_chain_and_shipped_bare_name(write: Callable[[str, str], Path]) -> None:
    write("a.yaml", "extends: baseline\nname: a\nseed: 1\n")
    write("b.yaml", "extends: a.yaml\nname: b\nvenue:\n  insurance_fund: 7\n")
    c = write("c.yaml", "extends: b.yaml\nname: c\n")
    scenario = load_scenario(c)
    baseline = load_scenario("baseline")
    assert (scenario.name, scenario.seed, scenario.venue.insurance_fund) == ("c", 1, 7.0)
    assert scenario.agents == baseline.agents


def test_relative_data_file_resolves_against_the_file_that_names_it(
    write: Callable[[str, str], Path],
) -> None:
    child = write("bt.yaml", f"extends: {SCENARIO_DIR / 'black_thursday.yaml'}\nseed: 3\n")
    scenario = load_scenario(child)
    assert Path(scenario.price_path.file) == SCENARIO_DIR / "data" / "events_1h.csv"  # type: ignore[union-attr]


def test_extends_to_itself_is_a_cycle(write: Callable[[str, str], Path]) -> None:
    path = write("self.yaml", "extends: self.yaml\n")
    message = error_of(path)
    assert message.startswith(f"{path}: extends: extends cycle self.yaml -> self.yaml")


# ---------------------------------------------------------------------------------------------
# --set overrides
# ---------------------------------------------------------------------------------------------


def test_override_values_are_typed_yaml_scalars() -> None:
    raw = load_raw_scenario("baseline")
    out = apply_overrides(
        raw,
        [
            "seed=7",
            "venue.insurance_fund=1e5",
            "output.keep_events=false",
            "output.format=csv",
            "agents.lps.params.drawdown_exit=null",
            "description=Text: with a colon",
        ],
    )
    assert out["seed"] == 7 and isinstance(out["seed"], int)
    assert out["venue"]["insurance_fund"] == 100_000.0
    assert out["output"]["keep_events"] is False
    assert out["output"]["format"] == "csv"
    assert out["agents"][3]["params"]["drawdown_exit"] is None
    assert out["description"] == "Text: with a colon"
    scenario = scenario_from_raw(out)
    assert scenario.population("lps").params.drawdown_exit is None


def test_override_addresses_lists_by_index_and_by_population_name() -> None:
    scenario = load_scenario(
        "baseline",
        [
            "agents.noise.count=5",
            "agents.1.params.threshold=0.02",
            "agents.noise.params.size={dist: uniform, low: 1, high: 3}",
        ],
    )
    assert scenario.population("noise").count == 5
    assert scenario.agents[1].params.threshold == 0.02
    assert scenario.population("noise").params.size == UniformDist(dist="uniform", low=1, high=3)
    flash = load_scenario("flash_crash_oracle_outage", ["events.1.change=-0.5"])
    assert flash.events[1].change == -0.5


def test_override_does_not_modify_its_input() -> None:
    raw = load_raw_scenario("baseline")
    apply_overrides(raw, ["agents.noise.count=1", "clock.ticks=10"])
    assert raw["agents"][0]["count"] == 300
    assert "ticks" not in raw["clock"]


def test_override_of_ticks_replaces_duration() -> None:
    scenario = load_scenario("baseline", ["clock.ticks=10"])
    assert (scenario.clock.ticks, scenario.clock.duration) == (10, None)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("clock.tik=5", "clock.tik: unknown key 'tik'; did you mean 'tick'?"),
        ("seeed=5", "seeed: unknown key 'seeed'; did you mean 'seed'?"),
        ("agents.nois.count=5", "agents.nois: unknown population 'nois'; did you mean 'noise'?"),
        ("agents.noise.params.sise=5", "agents.noise.params.sise: unknown key 'sise'"),
        ("agents.9.count=1", "agents.9: index out of range (got 9; allowed: 0 to 5"),
        ("venue.governance.initial_margin=0.1", "did you mean 'initial_margin_rate'?"),
        ("venue.kind.x=1", "venue.kind.x: venue.kind is a value"),
        ("governance.lot_size=1", "governance: unknown key 'governance'"),
        ("price_path.sigmaa=1", "price_path.sigmaa: unknown key 'sigmaa'; did you mean 'sigma'?"),
        ("clock.start.year=1", "clock.start.year: clock.start is a value"),
        ("events.0.at=1h", "events.0: index out of range"),
        ("seed", "an override must be KEY=VALUE"),
        ("extends=other.yaml", "extends: cannot be overridden"),
        ("agents.noise.count=[1", "cannot read the value as YAML"),
    ],
)
def test_bad_override_is_an_error(override: str, expected: str) -> None:
    message = error_of("baseline", (override,))
    assert expected in message
    assert message.startswith("baseline: ")
    assert f"from --set {override}" in message


def test_override_errors_are_all_reported() -> None:
    message = error_of("baseline", ("clock.tik=1", "seed=1", "agents.x.count=1"))
    assert len(message.splitlines()) == 2


def test_overridden_value_is_validated_and_named() -> None:
    message = error_of("baseline", ("venue.governance.maintenance_margin_rate=0.2",))
    assert message.startswith("baseline: venue.governance.maintenance_margin_rate: margin rates")
    assert "from --set venue.governance.maintenance_margin_rate=0.2" in message


# ---------------------------------------------------------------------------------------------
# The validated configuration
# ---------------------------------------------------------------------------------------------


def test_scenario_is_frozen() -> None:
    scenario = load_scenario("baseline")
    with pytest.raises(pydantic.ValidationError):
        scenario.seed = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        scenario.clock.tick = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        scenario.agents[0].params.size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        scenario.venue.governance["initial_margin_rate"] = 0.5  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        scenario.agents.append(scenario.agents[0])  # type: ignore[attr-defined]


def test_governance_goes_through_the_engine() -> None:
    scenario = load_scenario("baseline")
    perp = scenario.venue.perpetual_governance  # type: ignore[attr-defined]
    amm = scenario.venue.amm_governance  # type: ignore[attr-defined]
    assert perp is scenario.venue.perpetual_governance  # type: ignore[attr-defined]
    assert isinstance(perp, PerpetualGovernance) and isinstance(amm, AMMGovernance)
    assert (perp.lot_size, perp.trading_lot_size) == (0.001, 0.01)
    assert amm.update_index_prize == 5.0
    assert amm.ema_alpha == AMMGovernance().ema_alpha  # engine default where unset


def test_governance_timeline_applies_changes_in_time_order(
    write: Callable[[str, str], Path],
) -> None:
    path = write(
        "g.yaml",
        MINIMAL
        + """\
events:
  - {at: 3h, kind: set_governance, key: initial_margin_rate, value: 0.12}
  - {at: 1h, kind: set_governance, key: initial_margin_rate, value: 0.2}
  - {at: 2h, kind: set_governance, key: maintenance_margin_rate, value: 0.1}
  - {at: 2h, kind: set_governance, key: pool_fee_rate, value: 0.001}
""",
    )
    scenario = load_scenario(path)
    assert [e.at for e in scenario.timeline()] == [3600, 7200, 7200, 10800]
    venue = scenario.governance_at(7200)
    perp, amm = venue.perpetual_governance, venue.amm_governance
    assert (perp.initial_margin_rate, perp.maintenance_margin_rate) == (0.2, 0.1)
    assert amm.pool_fee_rate == 0.001
    assert scenario.governance_at(86_400).perpetual_governance.initial_margin_rate == 0.12
    assert scenario.venue.perpetual_governance.initial_margin_rate == 0.1  # type: ignore[attr-defined]
    assert isinstance(scenario.events[0], SetGovernanceEvent)


def test_run_times_accept_offsets_durations_and_iso(write: Callable[[str, str], Path]) -> None:
    path = write(
        "t.yaml",
        MINIMAL
        + """\
agents:
  - name: w
    type: whale
    params: {schedule: [90, 2h, "2024-01-01T03:00:00Z"]}
events:
  - {at: "2024-01-01T12:00:00Z", kind: oracle_outage, duration: 1h}
  - {at: 1d, kind: begin_global_settlement}
""",
    )
    scenario = load_scenario(path)
    assert [e.at for e in scenario.events] == [43_200, 86_400]  # the end of the run is allowed
    whale = scenario.population("w")
    assert whale.type == "whale" and isinstance(whale.params, WhaleParams)
    assert whale.params.schedule == (90, 7_200, 10_800)


def test_duration_parameters_accept_units_inside_distributions(
    write: Callable[[str, str], Path],
) -> None:
    path = write(
        "d.yaml",
        MINIMAL
        + "agents:\n  - name: n\n    type: noise_trader\n    params:\n"
        + "      holding_time: {dist: choice, values: [30m, 2h], weights: [3, 1]}\n",
    )
    holding = load_scenario(path).population("n").params.holding_time
    assert holding == ChoiceDist(dist="choice", values=(1800, 7200), weights=(3, 1))


def test_resolved_scenario_round_trips_through_json() -> None:
    for path in shipped_scenarios():
        scenario = load_scenario(path)
        dumped = json.loads(json.dumps(scenario.model_dump(mode="json")))
        assert Scenario.model_validate(dumped) == scenario


def test_resolve_scenario_path_accepts_bare_names() -> None:
    assert resolve_scenario_path("lp_run") == SCENARIO_DIR / "lp_run.yaml"
    assert resolve_scenario_path("lp_run.yaml") == SCENARIO_DIR / "lp_run.yaml"


# ---------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------


def test_distributions_sample_reproducibly_within_their_support() -> None:
    dists = [
        LognormalDist(dist="lognormal", median=2.0, sigma=0.5, high=5.0),
        UniformDist(dist="uniform", low=1.0, high=3.0),
        NormalDist(dist="normal", mean=0.0, std=1.0, low=-1.0, high=1.0),
        ChoiceDist(dist="choice", values=(1.0, 2.0, 5.0), weights=(0.0, 1.0, 1.0)),
        ConstantDist(dist="constant", value=4.0),
    ]
    for dist in dists:
        a = dist.sample(np.random.default_rng(1), 2_000)
        b = dist.sample(np.random.default_rng(1), 2_000)
        assert a.shape == (2_000,) and a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
        support = dist.support()
        assert a.min() >= support.low and a.max() <= support.high
    choice = dists[3].sample(np.random.default_rng(2), 2_000)
    assert set(np.unique(choice)) == {2.0, 5.0}


def test_lognormal_mean_and_median() -> None:
    rng = np.random.default_rng(3)
    by_median = LognormalDist(dist="lognormal", median=2.0, sigma=0.5).sample(rng, 200_000)
    by_mean = LognormalDist(dist="lognormal", mean=2.0, sigma=0.5).sample(rng, 200_000)
    assert np.median(by_median) == pytest.approx(2.0, rel=0.01)
    assert by_mean.mean() == pytest.approx(2.0, rel=0.01)


def test_sample_param_repeats_a_number() -> None:
    values = sample_param(2.5, np.random.default_rng(0), 3)
    np.testing.assert_array_equal(values, [2.5, 2.5, 2.5])


def test_bounded_distribution_satisfies_a_positive_parameter(
    write: Callable[[str, str], Path],
) -> None:
    path = write(
        "b.yaml",
        MINIMAL
        + "agents:\n  - name: n\n    type: noise_trader\n    params:\n"
        + "      size: {dist: normal, mean: 2, std: 1, low: 0.01}\n"
        + "      long_probability: {dist: uniform, low: 0.3, high: 0.7}\n",
    )
    params = load_scenario(path).population("n").params
    assert params.size == NormalDist(dist="normal", mean=2, std=1, low=0.01)


def test_typed_overrides_keep_python_values_and_check_keys() -> None:
    raw = load_raw_scenario("baseline")
    out = apply_typed_overrides(
        raw, {"venue.governance.maintenance_margin_rate": 0.05, "agents.noise.count": 3}
    )
    assert out["venue"]["governance"]["maintenance_margin_rate"] == 0.05
    scenario = scenario_from_raw(out)
    assert scenario.venue.perpetual_governance.maintenance_margin_rate == 0.05  # type: ignore[attr-defined]
    assert scenario.population("noise").count == 3
    with pytest.raises(ConfigError, match="did you mean 'maintenance_margin_rate'"):
        apply_typed_overrides(raw, {"venue.governance.maintenance_margin": 0.05})


def test_flat_venue_keys_name_their_new_place(write: Callable[[str, str], Path]) -> None:
    path = write("old.yaml", MINIMAL + "governance:\n  lot_size: 0.01\ndev_balance: 5\n")
    lines = error_of(path).splitlines()
    assert lines[0].startswith(f"{path}: governance: moved to venue.governance")
    assert lines[1].startswith(f"{path}: dev_balance: moved to venue.dev_balance")
