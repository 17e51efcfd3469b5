"""Charts and reports drawn from results on disk."""
