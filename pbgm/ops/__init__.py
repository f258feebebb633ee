"""Running pbgm in production: settings, metrics, logs and the health of services.

The modules, each imported by name (this package imports none of them, so that
reading the settings never loads prometheus-client):

- `pbgm.ops.settings`: every setting of the server and the command line, in one
  order (flag > `PBGM_*` variable > `PBGM_CONFIG` file > default);
- `pbgm.ops.metrics`: Prometheus metrics made on first use (`counter`, `gauge`,
  `histogram`) and one text for all the workers of a server (`exposition`);
- `pbgm.ops.multiprocess`: the metrics directory the workers of `pbgm serve` share;
- `pbgm.ops.logs`: text or JSON log lines with the request id;
- `pbgm.ops.endpoint`: `/metrics`, `/healthz` and `/readyz` on a port of their own
  for the long-running services (`--metrics-port`).
"""
