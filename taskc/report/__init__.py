"""`taskc report`: one table across models and tasks from run folders, in the terminal, Markdown,
CSV and a self-contained HTML page with SVG charts (see `taskc.report.cli`)."""
