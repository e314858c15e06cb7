"""Kedro pipelines: thin wiring over the plain modules of the package."""
