from shared.web import signin


class NotificationSettings(signin.SignInSettings):
    service_name: str = "notification"
    http_port: int = 8105
    #: info and warning decisions withdrawn or replaced within this window are never shown (README: why 30 s)
    alert_settle_seconds: float = 30.0
    #: a critical alert still active after this delay is escalated (then again after each further delay)
    alert_escalation_delay_seconds: float = 15 * 60.0
    alert_escalation_max_level: int = 2
    #: the role or channel an escalated alert is addressed to
    alert_escalate_to: str = "escalation"
    #: how often due deadlines are looked for (shared/runtime/timers.py; the settle window's precision)
    timer_poll_interval_s: float = 1.0
    #: how long POST /alerts/{id}/ack waits for its action to be applied before answering 202
    action_wait_seconds: float = 10.0
    #: how often an open live page (server-sent events) looks for changes
    live_poll_seconds: float = 0.5
    #: issue 19: browser origins allowed to call the CDS Hooks endpoints (CORS), comma-separated; empty: none. The
    #: default is the public CDS Hooks sandbox. Every call still needs a clinician's token.
    cds_allowed_origins: str = "https://sandbox.cds-hooks.org"
    #: issue 19: the base URL clinicians' browsers reach this service at, for the cards' links (the patient's page,
    #: the guideline passage); unset: the base URL of the CDS request
    cds_public_base_url: str | None = None
    #: issue 19: the guideline's French text (served by passage at /cds-services/guideline/{rule_id}); unset: the
    #: checkout's ../shared/guideline copy when present
    guideline_path: str | None = None
    # issue 19: the page's sign-in settings (PAGE_CLIENT_ID, PAGE_OIDC_ISSUER, PAGE_SCOPES, PAGE_FRAME_ANCESTORS,
    # SMART_ALLOWED_ISS, PAGE_TOKEN_PASTE) are the shared ones (shared/web/signin.py SignInSettings)
