from services.systemic_planner.app import build
from services.systemic_planner.settings import SystemicSettings
from shared.web.http import run

if __name__ == "__main__":
    run(SystemicSettings(), build)
