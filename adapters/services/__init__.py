"""Grid and control services that wire `controls` to the bus and to policies.

- `adapters.services.inertia`: inertia estimation, started by the event service
  (`pbgm.events`) through a `run_service` obligation (`inertia-estimation`)
- `adapters.services.voltage`, `.frequency`, `.pmu`: the control services run by
  `pbgm-service` (`adapters.cli`), with the plumbing in `adapters.services._runner`
  (and the voltage service's reading of its configuration and policies in
  `adapters.services._voltage_config`)

Nothing is imported here, so importing one service does not load the others.
"""
