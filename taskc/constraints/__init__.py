"""Output constraints: one intermediate form, lowered by each decoding target."""
