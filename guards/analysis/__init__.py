"""Analysis: outcomes to decisions (per identity x task, axes, PB) and the comparison of two runs."""
