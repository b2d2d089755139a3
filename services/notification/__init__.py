"""notification: turns recommendations into clinician alerts, stores them and serves them."""
