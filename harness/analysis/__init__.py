"""Analysis: tables computed from records (robustness, fairness); never re-runs a model."""
