"""The ``guards`` command: one module per command group; ``main`` dispatches."""
