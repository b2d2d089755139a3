from shared.settings import Settings


class SystemicSettings(Settings):
    service_name: str = "systemic-planner"
    http_port: int = 8103
