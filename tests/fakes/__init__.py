"""Local fakes of model providers for tests and benches (real HTTP on 127.0.0.1)."""
