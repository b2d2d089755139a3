"""systemic-planner: bone-targeted systemic treatment plan (anti-resorptives, vitamin D, safety)."""
