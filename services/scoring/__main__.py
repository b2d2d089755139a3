from services.scoring.app import build
from services.scoring.settings import ScoringSettings
from shared.web.http import run

if __name__ == "__main__":
    run(ScoringSettings(), build)
