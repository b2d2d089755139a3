from shared.http import run
from services.systemic_planner.app import build
from services.systemic_planner.settings import SystemicSettings

if __name__ == "__main__":
    run(SystemicSettings(), build)
