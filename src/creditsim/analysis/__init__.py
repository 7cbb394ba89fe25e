"""Studies of many runs on common random numbers: comparisons, sweeps, policy search, calibration and backtests,
and what the instruments cost."""
