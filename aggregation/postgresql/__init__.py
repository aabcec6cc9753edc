"""PostgreSQL as this project uses it: Django's backend, a pool check with no round trip."""
