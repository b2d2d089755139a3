from services.lab_normalisation.app import build
from services.lab_normalisation.settings import LabSettings
from shared.web.http import run

if __name__ == "__main__":
    run(LabSettings(), build)
