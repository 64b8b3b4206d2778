"""The pure product logic: signals, scoring, the learned model, selection, estimates, metrics,
agreement, promotion, leakage and exports. It imports nothing of ours and does no I/O."""
