"""Helpers every stage may use (they import nothing else from taskc): JSON encodings and hashes,
percentiles, endpoint rules."""
