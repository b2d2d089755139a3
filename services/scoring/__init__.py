"""scoring: scores, classifications and skeletal-related events from labs, imaging and assessments."""
