"""Exchange designs, one folder each. Only :mod:`perpsim.engine.registry` imports them."""
