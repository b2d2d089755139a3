"""radiotherapy-planner: local treatment (radiotherapy, SBRT, cementoplasty, surgery referral)."""
