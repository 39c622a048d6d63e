"""Auditory brainstem responses: simulated recordings, a CVAE with legacy and joint modes, peak-based evaluation."""
