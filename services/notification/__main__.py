from shared.http import run
from services.notification.app import build
from services.notification.settings import NotificationSettings

if __name__ == "__main__":
    run(NotificationSettings(), build)
