"""Mesa agents of perpsim, installed as ``perpsim.agents``.

Agents observe the market, decide, and call the venue (:class:`perpsim.engine.Venue`); they
never touch balances themselves.
"""
