"""Output constraints: one intermediate form, lowered by each decoding target.

- `ir`: the `Constraint` IR (choice / json_schema / regex / grammar).
- `lower`: to vLLM ``structured_outputs``, Outlines output types, xgrammar, llguidance.
- `sql_grammar`: a Lark grammar for SQLite SELECT queries over one database's schema, in the
  canonical form (the default for contracts) or the permissive one.
- `canonical_sql`: the canonical SQL serialization (sqlglot): gold answers and the canonical grammar.
- `qwen_vocab`: the real Qwen vocabulary as a local Hugging Face tokenizer folder.
- `engines`, `walks`, `verify`: compile constraints in real engines (xgrammar, llguidance,
  outlines-core), check gold outputs against them, probe them with random walks.

Engines are imported lazily: importing this package costs nothing.
"""
