from shared.http import run
from services.lab_normalisation.app import build
from services.lab_normalisation.settings import LabSettings

if __name__ == "__main__":
    run(LabSettings(), build)
