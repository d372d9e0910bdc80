"""Load testing a served model with a spec's own requests: `taskc bench` (see `taskc.bench.run`)."""
