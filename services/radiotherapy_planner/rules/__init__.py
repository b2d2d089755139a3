"""Pure local-treatment rules, one module per section of the guideline's local-treatment chapters:
conventional RT (`conventional`), SBRT (`sbrt`), re-irradiation (`reirradiation`), drug–RT windows (`drugs`),
cementoplasty (`cementoplasty`) and surgery (`surgery`). No I/O."""

from services.radiotherapy_planner.rules.conventional import MsccPlan, cord_compression_plan

__all__ = ["MsccPlan", "cord_compression_plan"]
