"""Random streams of a run, each derived from the run seed and the stream's name.

A stream's numbers depend only on ``(run seed, name)``: adding a population, a second asset's
price path or a vault never changes another stream, whatever order they are created in.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stream_key(name: str) -> tuple[int, ...]:
    """Four 32-bit words from the SHA-256 of ``name`` (stable across machines and versions)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class Streams:
    """The named random streams of one run.

    Args:
        run_seed: the run's root seed (>= 0).
    """

    def __init__(self, run_seed: int) -> None:
        self.run_seed = int(run_seed)
        self._made: dict[str, np.random.SeedSequence] = {}

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        """The :class:`~numpy.random.SeedSequence` of stream ``name``."""
        seq = self._made.get(name)
        if seq is None:
            seq = np.random.SeedSequence(entropy=(self.run_seed, *stream_key(name)))
            self._made[name] = seq
        return seq

    def generator(self, name: str) -> np.random.Generator:
        """A fresh generator of stream ``name`` (the same numbers every time it is made)."""
        return np.random.default_rng(self.seed_sequence(name))

    def names(self) -> tuple[str, ...]:
        """The streams asked for so far, in the order first asked."""
        return tuple(self._made)
