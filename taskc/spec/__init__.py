"""The spec language: YAML with locations, the pydantic spec model and the short type syntax."""
