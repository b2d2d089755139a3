"""The five OsteoCDS services. Each is its own process; they never import each other."""
