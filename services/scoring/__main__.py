from shared.http import run
from services.scoring.app import build
from services.scoring.settings import ScoringSettings

if __name__ == "__main__":
    run(ScoringSettings(), build)
