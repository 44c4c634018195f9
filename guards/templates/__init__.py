"""Templates `guards init` writes into a repository (thresholds.toml, the gate tests, a workflow): package data."""
