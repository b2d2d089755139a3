from shared.http import run
from services.radiotherapy_planner.app import build
from services.radiotherapy_planner.settings import RadiotherapySettings

if __name__ == "__main__":
    run(RadiotherapySettings(), build)
