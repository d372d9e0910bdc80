"""The compiler: spec -> contract -> artifacts."""
