from shared.settings import Settings


class NotificationSettings(Settings):
    service_name: str = "notification"
    http_port: int = 8105
