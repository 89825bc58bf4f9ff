"""Fixtures live in tests/fixtures/, one module per part they stand up."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.simulator",
    "tests.fixtures.store",
    "tests.fixtures.gateway",
]
