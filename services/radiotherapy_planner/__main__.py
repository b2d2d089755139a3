from services.radiotherapy_planner.app import build
from services.radiotherapy_planner.settings import RadiotherapySettings
from shared.web.http import run

if __name__ == "__main__":
    run(RadiotherapySettings(), build)
