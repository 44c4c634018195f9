"""Mitigate: defence system-prompt candidates, ``guards defend`` (rank them by PB) and DPO preference pairs."""
