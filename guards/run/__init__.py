"""Run: the request matrix, the runner that fills it through the model door, planning (requests, cost,
detectable gaps), the session (settings in, report out) and progress."""
