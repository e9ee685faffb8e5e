"""The simulation: a synthetic AppStream 2.0 world for the demo, the tests and the benchmarks.

Not part of the product: the Lambda layer (``layers/core``) does not contain it, and the core never
imports it (``tests/unit/test_architecture.py``).  SYNTHETIC DATA only (see ``world.py``).

- :func:`generate_world` (``world.py``): a small world rich in scenarios, with its ground truth (the
  oracle the golden tests compare with);
- :func:`generate_org_world` (``world.py``): an organisation (tenants sharing 10.40.0.0/16, two
  regions, late and missing reports), fed live or as a backfill by ``org.py``;
- :func:`generate_scale` (``scale.py``): volume for benchmarks;
- :class:`FakeAppStream` (``fake_appstream.py``): the AppStream API serving a world's sessions;
- ``demo.py``: ``auditcorr demo``.
"""

from .common import (
    ACCOUNT,
    AMBIGUOUS,
    APP_COLUMNS,
    ATTRIBUTED,
    DEFAULT_TENANT,
    EXTERNAL,
    FLEET_MULTI,
    FLEET_SINGLE,
    ORG_SCENARIOS,
    OUT_OF_SCOPE,
    SCENARIOS,
    SESSION_COLUMNS,
    UNATTRIBUTED,
    Arrival,
    ExpectedWrite,
    ScaleWorld,
    Tenant,
    World,
    org_tenant,
)
from .scale import generate_scale
from .world import ORG_TENANTS, generate_org_world, generate_world

__all__ = [
    "ACCOUNT", "AMBIGUOUS", "APP_COLUMNS", "ATTRIBUTED", "EXTERNAL", "FLEET_MULTI", "FLEET_SINGLE", "OUT_OF_SCOPE",
    "SCENARIOS", "SESSION_COLUMNS", "UNATTRIBUTED", "Arrival", "ExpectedWrite", "ScaleWorld", "World",
    "generate_scale", "generate_world", "DEFAULT_TENANT", "ORG_SCENARIOS", "ORG_TENANTS", "Tenant", "org_tenant",
    "generate_org_world",
]
