"""Outputs -> answers -> numbers: per-task scoring and the samples file (score), the loglikelihood
picks (loglikelihood) and metric aggregation with intervals, strata and sample accuracy (aggregate)."""
