"""Agent populations: the ``agents:`` union, one member per registered agent type.

Each agent type declares its parameters model (``Params``) next to its class, and
:data:`perpsim.agents.REGISTRY` names the types; the population models are built from that
registry, so a new agent type needs no change here.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeAlias

from pydantic import Field, Strict, ValidationError, create_model

from perpsim.agents import REGISTRY
from perpsim.engine.core.config import FrozenModel

__all__ = [
    "MAX_POPULATION_COUNT",
    "POPULATION_MODELS",
    "SINGLE_AGENT_TYPES",
    "Population",
    "PopulationBase",
    "PopulationName",
]

#: Populations of a scenario are limited to this many agents each (a guard against typos).
MAX_POPULATION_COUNT: Final = 1_000_000
#: Agent types of which a population has at most one agent (global settlement has one owner).
SINGLE_AGENT_TYPES: Final = frozenset({"admin"})

Count = Annotated[int, Strict(), Field(ge=0, le=MAX_POPULATION_COUNT)]

PopulationName = Annotated[
    str, Strict(), Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
]

ProductName = Annotated[
    str, Strict(), Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]


class PopulationBase(FrozenModel):
    """Fields shared by every population.

    Attributes:
        name: Unique name (letters, digits, ``_``, ``-``; not starting with a digit); also the
            ``--set agents.NAME.…`` address of the population.
        count: Number of agents (0 disables an inherited population).
        type: The agent type (a key of :data:`perpsim.agents.REGISTRY`).
        product: The venue product its agents trade (a kind with several products, such as
            Predy's ``future`` and ``squared``); None is the venue's default product.
        params: The agent type's own parameters model.
    """

    name: PopulationName
    count: Count = 1
    product: ProductName | None = None
    if TYPE_CHECKING:
        # Declared by each generated member (a literal tag and the type's own model).
        type: str
        params: FrozenModel


def _default_params(params_model: type[FrozenModel]) -> FrozenModel | None:
    """The type's default parameters, or None when there are none and ``params`` is required.

    A whale's defaults are not valid on their own: it needs a schedule or an arrival rate.
    """
    try:
        return params_model()
    except ValidationError:
        return None


def _population_model(type_name: str, agent: Any) -> type[PopulationBase]:
    fields: dict[str, Any] = {"type": (typing.Literal.__getitem__(type_name), ...)}
    if type_name in SINGLE_AGENT_TYPES:
        fields["count"] = (Annotated[int, Strict(), Field(ge=0, le=1)], 1)
    default = _default_params(agent.Params)
    fields["params"] = (agent.Params, ... if default is None else default)
    model: type[PopulationBase] = create_model(
        f"{agent.__name__}Population",
        __base__=PopulationBase,
        __module__=__name__,
        __doc__=f"A population of {type_name} agents ({agent.__name__}).",
        **fields,
    )
    return model


#: The population model of each agent type, in the registry's order.
POPULATION_MODELS: Final[dict[str, type[PopulationBase]]] = {
    type_name: _population_model(type_name, agent) for type_name, agent in REGISTRY.items()
}

#: Any agent population; ``type`` selects the model.
if TYPE_CHECKING:
    Population: TypeAlias = PopulationBase
else:
    Population = Annotated[
        typing.Union[tuple(POPULATION_MODELS.values())],  # noqa: UP007 (built from the registry)
        Field(discriminator="type"),
    ]
