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
