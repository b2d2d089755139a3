"""`python -m services.lab_normalisation [run | rebuild]`: the lab-normalisation service (see --help)."""

from __future__ import annotations

from shared.web.cli import service_main

if __name__ == "__main__":
    service_main(
        "services.lab_normalisation",
        "OsteoCDS lab-normalisation. Normalises lab results (hospital events, FHIR, HL7 v2 over HTTP and MLLP)"
        " into canonical units and LOINC.",
        "HTTP_PORT (8101), MLLP_HOST / MLLP_PORT (127.0.0.1 / 2575; 0 turns MLLP off)",
        "LabSettings",
    )
