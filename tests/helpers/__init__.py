"""Test helpers: real service processes, PostgreSQL schemas, load, a TCP proxy, metrics."""
