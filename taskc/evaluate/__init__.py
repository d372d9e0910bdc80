"""`taskc eval` and `taskc score`: requests -> results -> validated outputs -> scores -> summary."""
