"""The evidence experiments (recipes/evidence/): each design-card method in the regime its paper targets, against
its baseline at the same budget, over several seeds paired by seed (statistics in `hf_margin.demo.evidence_stats`)."""
