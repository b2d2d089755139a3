from shared.settings import Settings


class RadiotherapySettings(Settings):
    service_name: str = "radiotherapy-planner"
    http_port: int = 8104
