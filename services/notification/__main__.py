from services.notification.app import build
from services.notification.settings import NotificationSettings
from shared.web.http import run

if __name__ == "__main__":
    run(NotificationSettings(), build)
