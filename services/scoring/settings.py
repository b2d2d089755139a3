from shared.settings import Settings


class ScoringSettings(Settings):
    service_name: str = "scoring"
    http_port: int = 8102
