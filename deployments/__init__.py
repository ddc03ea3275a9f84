"""Tools that render and check what deployments/ ships (run by deployments/check.sh)."""
