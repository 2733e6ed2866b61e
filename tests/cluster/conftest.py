"""Ray reads ``RAY_AUTH_MODE`` when it is first imported: the token that every test
cluster's nodes and this driver share is set here, before any test module imports ray
(see raycluster.py)."""

import os
import secrets

os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
