"""perpsim: an agent-based risk simulator for AMM-based perpetual-futures exchanges."""

from __future__ import annotations

__version__ = "0.1.0"
