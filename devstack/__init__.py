"""Development tooling, never imported by a service: the local stack of `./osteocds up` and the tests (embedded
broker, Redis, the local OIDC issuer). `shared/` must not import it (tests/test_layout.py)."""
