from shared.settings import Settings


class NotificationSettings(Settings):
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
    #: issue 19 (services/notification/signin.py): the clinicians' page signs in with the OIDC authorization code
    #: flow + PKCE as this public client (register its redirect URI <page base>/ui/callback at the provider)
    page_client_id: str = "osteocds-page"
    #: the provider the page signs in with; unset: OIDC_ISSUER (the one whose tokens the services accept)
    page_oidc_issuer: str | None = None
    #: scopes the page asks for (space-separated); an EHR launch adds `launch launch/patient`
    page_scopes: str = "openid"
    #: CSP frame-ancestors of the page: the EHR origins allowed to embed it (space-separated CSP sources)
    page_frame_ancestors: str = "'self'"
    #: SMART EHR launch: the `iss` values (FHIR base URLs) accepted at /ui/launch, comma-separated; unset: the
    #: page's issuer only. Any other `iss` is refused (the page would send the user's sign-in elsewhere).
    smart_allowed_iss: str | None = None
    #: DEVELOPMENT ONLY: the page also offers to paste a token; unset: only when the page's issuer is a loopback
    #: (local) issuer, never with a hospital's provider
    page_token_paste: bool | None = None
