"""Configuration: thresholds.toml validated against its JSON Schema, the one override table (GUARDS_* variables,
`guards` flags, `--guards-*` pytest options) and the named profiles. It sits above `tasks`, whose registry says
which tasks exist, their axes and their per-profile sizes."""
