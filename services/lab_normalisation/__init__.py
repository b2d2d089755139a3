"""lab-normalisation: lab results in any usual unit -> canonical SI values and derived values."""
