"""The plan of a sweep: the resolved scenario, the checked keys, the points and the seeds.

:func:`load_sweep` reads a sweep file and :func:`plan_sweep` resolves it: the scenario is found,
every varied key is checked against the scenario's schema through its override machinery, the
points are generated and every point's scenario is validated before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perpsim import __version__
from perpsim.errors import ConfigError
from perpsim.run import file_sha256, source_sha256
from perpsim.scenario import (
    SCENARIO_DIR,
    apply_typed_overrides,
    load_raw_scenario,
    resolve_scenario_path,
    scenario_from_raw,
)
from perpsim.scenario.yaml import KeyLines
from perpsim.sweep.sampling import generate_points, run_seed
from perpsim.sweep.spec import (
    ChoiceParam,
    RangeParam,
    SweepSpec,
    ValuesParam,
    line_of,
    read_spec,
)
from perpsim.sweep.task import RunTask

__all__ = ["SweepPlan", "load_sweep", "override_text", "overrides_label", "plan_sweep"]


def _data_files(raw: Any, base_dir: Path) -> dict[str, Path]:
    """The data files a scenario tree names (every text under a key ending in ``file``)."""
    found: dict[str, Path] = {}
    todo = [raw]
    while todo:
        node = todo.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(value, str) and str(key).endswith("file"):
                    path = Path(value).expanduser()
                    path = path if path.is_absolute() else base_dir / path
                    if path.is_file():
                        found[value] = path.resolve()
                else:
                    todo.append(value)
        elif isinstance(node, list | tuple):
            todo.extend(node)
    return found


def override_text(value: Any) -> str:
    """A value as a user would write it after ``--set KEY=`` (for messages and commands).

    The runs themselves get the values as they are (:meth:`SweepPlan.point_overrides`).
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, allow_nan=False)


def overrides_label(values: Mapping[str, Any]) -> str:
    """``key=value, ...`` of some overrides, as a user would write them."""
    return ", ".join(f"{k}={override_text(v)}" for k, v in values.items())


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the spec, the resolved scenario, the points and the seeds.

    Attributes:
        spec: The sweep file's content.
        source: The sweep file (for messages), or a label.
        name: The sweep's name.
        scenario: What workers load: an absolute scenario path, or a shipped scenario's name
            (so that workers on other machines find it in their own installation).
        scenario_name: The scenario's ``name``.
        base_overrides: ``set:`` as ``(key, value)`` pairs, in order.
        keys: The varied keys, in order.
        kinds: The dtype of each varied key's column.
        points: The points.
        root_seed: Root of the sweep's SeedSequence.
        fingerprint: Hash of everything that decides the results (spec, resolved scenario,
            perpsim version); a resumed sweep must have the same.
        function: ``module:function`` run in place of the model (see
            :attr:`RunTask.function`); None runs the scenario.
    """

    spec: SweepSpec
    source: str
    name: str
    scenario: str
    scenario_name: str
    base_overrides: tuple[tuple[str, Any], ...]
    keys: tuple[str, ...]
    kinds: tuple[str, ...]
    points: tuple[tuple[Any, ...], ...]
    root_seed: int
    fingerprint: str
    function: str | None = None

    @property
    def n_points(self) -> int:
        """Number of points."""
        return len(self.points)

    @property
    def n_runs(self) -> int:
        """Number of runs (points × seeds)."""
        return len(self.points) * self.spec.seeds

    def point_overrides(self, point_id: int) -> tuple[tuple[str, Any], ...]:
        """The ``(key, value)`` overrides of a point (``set:`` first), values as typed."""
        return (*self.base_overrides, *zip(self.keys, self.points[point_id], strict=True))

    def describe_point(self, point_id: int) -> str:
        """``key=value, ...`` of a point."""
        return overrides_label(dict(zip(self.keys, self.points[point_id], strict=True)))

    def seed_of(self, point_id: int, seed_index: int) -> int:
        """The seed of a run."""
        return run_seed(self.root_seed, point_id, seed_index, self.spec.common_seeds)

    def task(self, point_id: int, seed_index: int, out_dir: Path | None) -> RunTask:
        """The task of run ``(point_id, seed_index)``."""
        return RunTask(
            point_id=point_id,
            seed_index=seed_index,
            seed=self.seed_of(point_id, seed_index),
            scenario=self.scenario,
            overrides=self.point_overrides(point_id),
            keep=self.spec.keep,
            out_dir=None if out_dir is None else str(_absolute(out_dir)),
            function=self.function,
        )


def _absolute(path: Path) -> Path:
    """``path`` resolved, unless it already is absolute (the runner resolves it once)."""
    return path if path.is_absolute() else path.resolve()


def _clean_override_message(text: str) -> str:
    text = re.sub(r"; from --set [^)]*\)", ")", text)
    return re.sub(r" \(from --set [^)]*\)", "", text)


def load_sweep(path: str | Path, *, validate_points: bool = True) -> SweepPlan:
    """Reads and validates a sweep file.

    Args:
        path: The sweep file (YAML).
        validate_points: Validate every point's scenario (the default; a point whose scenario
            is invalid is an error).

    Returns:
        The plan.

    Raises:
        ConfigError: One line per problem, each naming the file and the key.
    """
    path = Path(path)
    spec, lines = read_spec(path)
    return plan_sweep(
        spec,
        base_dir=path.resolve().parent,
        source=str(path),
        default_name=path.stem,
        validate_points=validate_points,
        lines=lines,
    )


def plan_sweep(
    spec: SweepSpec,
    *,
    base_dir: Path,
    source: str = "<sweep>",
    default_name: str = "sweep",
    validate_points: bool = True,
    lines: KeyLines | None = None,
    points: Sequence[tuple[Any, ...]] | None = None,
) -> SweepPlan:
    """Resolves a sweep spec: scenario, keys, points and seeds.

    Args:
        spec: The validated spec.
        base_dir: The folder a relative ``scenario`` path is resolved against.
        source: How to name the sweep in messages.
        default_name: The name when ``spec.name`` is not given.
        validate_points: Validate every point's scenario.
        lines: Line numbers of the sweep file's keys (for messages).
        points: The points themselves (one value per parameter, in order), in place of the
            spec's sampler: the analysis layer's designs (Saltelli samples, an optimiser's
            candidates). They are validated and fingerprinted like sampled points.

    Returns:
        The plan.

    Raises:
        ConfigError: The scenario is missing or invalid, a key does not exist in the scenario,
            or a point's scenario is invalid.
    """
    lines = lines or {}

    def located(message: str, *path: Any) -> str:
        """The message with the line of ``path`` in the sweep file."""
        line = line_of(tuple(path), lines)
        if line is None:
            return message
        if message.endswith(")"):
            return f"{message[:-1]}; line {line})"
        return f"{message} (line {line})"

    candidate = base_dir / spec.scenario
    if candidate.is_file():
        scenario_ref = str(candidate.resolve())
    else:
        try:
            shipped = resolve_scenario_path(spec.scenario)
        except ConfigError as exc:
            raise ConfigError(
                located(f"{source}: scenario: {exc}; looked in {base_dir} too", "scenario")
            ) from None
        is_shipped = shipped.resolve().parent == SCENARIO_DIR.resolve()
        scenario_ref = spec.scenario if is_shipped else str(shipped.resolve())
    raw = load_raw_scenario(scenario_ref)

    base_overrides = tuple(spec.overrides.items())
    problems: list[str] = []
    checks = [(("set", key), value) for key, value in spec.overrides.items()]
    for key, param in spec.parameters.items():
        first = (
            param.values[0]
            if isinstance(param, (ValuesParam, ChoiceParam))
            else param.range[0]
            if isinstance(param, RangeParam)
            else param.low
        )
        checks.append((("parameters", key), first))
    # The varied keys are checked on the scenario with set: applied (set: may add the events
    # whose elements a sweep varies); set: itself on the scenario.
    try:
        with_set = apply_typed_overrides(raw, dict(base_overrides), source=f"{source}: set")
    except ConfigError:
        with_set = raw  # set:'s own problems are reported below, one per key
    for (section, key), value in checks:
        try:
            apply_typed_overrides(
                raw if section == "set" else with_set, {key: value}, source=f"{source}: {section}"
            )
        except ConfigError as exc:
            text = _clean_override_message(str(exc))
            text = text.replace(f"{source}: {section}: ", f"{source}: {section}.", 1)
            problems.append(located(text, section, key))
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        base_raw = apply_typed_overrides(raw, dict(base_overrides), source=f"{source}: set")
        base = scenario_from_raw(base_raw, f"{spec.scenario} with the sweep's set")
    except ConfigError as exc:
        raise ConfigError(_clean_override_message(str(exc))) from None

    root = base.seed if spec.seed is None else spec.seed
    explicit = points is not None
    points = [tuple(p) for p in points] if points is not None else generate_points(spec, root)
    keys = tuple(spec.parameters)
    if validate_points:
        bad: list[str] = []
        n_bad = 0
        for pid, values in enumerate(points):
            point = dict(zip(keys, values, strict=True))
            label = f"{source}: point {pid} ({overrides_label(point)})"
            try:
                scenario_from_raw(apply_typed_overrides(base_raw, point, source=label), label)
            except ConfigError as exc:
                n_bad += 1
                if len(bad) < 10:
                    bad.append(_clean_override_message(str(exc)))
        if n_bad:
            more = f"\n... and {n_bad - len(bad)} more invalid points" if n_bad > len(bad) else ""
            raise ConfigError(
                f"{source}: {n_bad} of {len(points)} points give an invalid scenario:\n"
                + "\n".join(bad)
                + more
            )

    decisive = spec.model_dump(
        mode="json",
        by_alias=True,
        exclude={"name", "description", "scenario", "metric", "minimize"},
    )
    decisive["seed"] = root
    scenario_dir = resolve_scenario_path(scenario_ref).resolve().parent
    files = _data_files(base_raw, scenario_dir)
    for values in points:
        point_raw = {k: v for k, v in zip(keys, values, strict=True) if k.endswith("file")}
        files |= _data_files(point_raw, scenario_dir)
    digest = hashlib.sha256(
        json.dumps(
            {
                "spec": decisive,
                "scenario": scenario_ref,
                "resolved_scenario": base_raw,
                # A data file edited between a kill and --resume changes the results, and so
                # does the code (a development checkout changes without a new version).
                "data_files": {name: file_sha256(path) for name, path in sorted(files.items())},
                "perpsim": __version__,
                "perpsim_source_sha256": source_sha256(),
                **({"points": points} if explicit else {}),
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    kinds = tuple(p.column_kind() for p in spec.parameters.values())
    return SweepPlan(
        spec=spec,
        source=source,
        name=spec.name or default_name,
        scenario=scenario_ref,
        scenario_name=base.name,
        base_overrides=base_overrides,
        keys=keys,
        kinds=kinds,
        points=tuple(points),
        root_seed=root,
        fingerprint=digest,
    )
