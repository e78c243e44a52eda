"""Random streams are named: a stream's numbers depend on the run seed and its name only.

So a population added in front of the others (or another one renamed) changes neither the price
path nor any other population's draws. Under the earlier positional scheme (children spawned in
population order) inserting a population shifted every later population onto another stream:
these tests insert at the front on purpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from perpsim.model import PerpModel
from perpsim.model.streams import Streams
from perpsim.scenario import apply_overrides, load_raw_scenario, scenario_from_raw

#: The baseline, two hours with a few agents per population (a run takes about a second).
SHORT = [
    "clock.duration=2h",
    "agents.noise.count=30",
    "agents.momentum.count=4",
    "agents.lps.count=3",
]

#: A whale whose first (Poisson) arrival is years away: it is built and draws its own stream,
#: but it is never woken in a two-hour run, so the other accounts' actions must not change.
IDLE_WHALE: dict[str, Any] = {
    "name": "idle_whale",
    "type": "whale",
    "count": 1,
    "params": {"capital": 100_000, "side": "long", "size": 10, "arrival_rate": 1e-6},
}


def baseline_raw() -> dict[str, Any]:
    return apply_overrides(load_raw_scenario("baseline"), SHORT)


def build(raw: dict[str, Any]) -> PerpModel:
    return PerpModel(scenario_from_raw(raw, "test"))


def params_of(model: PerpModel) -> dict[str, list[dict[str, Any]]]:
    return {
        pop: [dict(agent.params) for agent in members]
        for pop, members in model.agents_by_population.items()
    }


def events_without(model: PerpModel, population: str) -> pd.DataFrame:
    """The event log, without the rows of ``population``'s accounts."""
    events = model.event_log.frame()
    names = {agent.name for agent in model.agents_by_population.get(population, [])}
    return events[~events["account"].isin(names)].reset_index(drop=True)


def test_same_name_same_numbers_whatever_the_order_of_asking() -> None:
    first = Streams(42)
    a1 = first.generator("population:noise").random(8)
    b1 = first.generator("price_path").random(8)
    second = Streams(42)
    b2 = second.generator("price_path").random(8)
    a2 = second.generator("population:noise").random(8)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    # A generator made again starts the stream again.
    np.testing.assert_array_equal(first.generator("price_path").random(8), b1)
    assert second.names() == ("price_path", "population:noise")


def test_different_names_or_seeds_give_different_numbers() -> None:
    streams = Streams(42)
    draws = {
        name: streams.generator(name).random(8)
        for name in ("price_path", "order", "mesa", "population:noise", "population:noise2")
    }
    values = list(draws.values())
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            assert not np.array_equal(a, b)
    other_seed = Streams(43).generator("price_path").random(8)
    assert not np.array_equal(other_seed, draws["price_path"])


def test_a_population_added_in_front_changes_no_other_stream() -> None:
    raw = baseline_raw()
    plain = build(raw)
    plain.run()
    with_whale = apply_overrides(raw, [])
    with_whale["agents"] = [IDLE_WHALE, *with_whale["agents"]]
    extra = build(with_whale)
    extra.run()

    np.testing.assert_array_equal(plain.market_prices, extra.market_prices)
    (whale,) = extra.agents_by_population["idle_whale"]
    assert whale.next_arrival is not None and whale.next_arrival > extra.times[-1]
    extra_params = params_of(extra)
    del extra_params["idle_whale"]
    assert extra_params == params_of(plain)
    # The whale never acts, so everything else happens exactly as before.
    assert len(events_without(plain, "idle_whale")) > 100
    pd.testing.assert_frame_equal(
        events_without(plain, "idle_whale"), events_without(extra, "idle_whale")
    )


def test_renaming_a_population_changes_only_its_own_stream() -> None:
    raw = baseline_raw()
    before = params_of(build(raw))
    renamed = apply_overrides(raw, ["agents.noise.name=retail"])
    model = build(renamed)
    after = params_of(model)
    assert list(after) == ["retail", "momentum", "arbs", "lps", "liquidators", "keepers"]
    np.testing.assert_array_equal(build(raw).market_prices, model.market_prices)
    # Its sampled parameters now come from another stream.
    assert after.pop("retail") != before.pop("noise")
    assert after == before
