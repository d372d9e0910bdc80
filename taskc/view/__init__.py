"""`taskc view`: a local web viewer over run folders (index, side-by-side samples with filters,
per-kind views, regressions between two runs). Read-only: run folders are never written.

Modules: `columns` (a line-offset index and compact per-sample columns of one samples.jsonl),
`store` (finding runs under the runs folder, safely), `contracts` (the spec behind a run: gold,
rendered messages, databases), `compare` (joining runs row by row, filters, paging), `kinds`
(confusion matrix, per-argument errors, per-field accuracy, SQL results), `app` (the Starlette
app and its JSON API), `cli` (the command). The page itself is `static/`.
"""
