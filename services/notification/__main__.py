"""`python -m services.notification [run | rebuild]`: the notification service (see --help)."""

from __future__ import annotations

from shared.web.cli import service_main

if __name__ == "__main__":
    service_main(
        "services.notification",
        "OsteoCDS notification. Turns recommendations into alerts (settle window, escalation, acknowledgements),"
        " CDS Hooks cards and the clinicians' page.",
        "HTTP_PORT (8105)",
        "NotificationSettings",
    )
