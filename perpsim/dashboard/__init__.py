"""The interactive dashboard (``perpsim viz``): Mesa's SolaraViz on a live run or a run folder.

- :mod:`.session` — :class:`~perpsim.dashboard.session.DashboardRun`, the Mesa model SolaraViz
  steps: the form's values as ``--set`` items, the scenario layer, :class:`perpsim.model.PerpModel`;
- :mod:`.recorded` — a finished run folder, shown up to any recorded row;
- :mod:`.snapshot` — what both show at one moment (series, latest events, markers);
- :mod:`.panels` — the charts, as SVG, the common ones and each venue kind's own (from the
  registry);
- :mod:`.app` — the Solara page; :mod:`.server` — serving it; :mod:`.cli` — the command.

Only :mod:`.app` and :mod:`.server` need the ``viz`` extra (Solara); the rest imports with the
core dependencies, so the run, the snapshots and the charts are tested without a browser.
"""
