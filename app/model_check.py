"""`python -m app.model_check`: resolve, download and verify the model to serve, in its own process.

Run by the gunicorn master (app/model_pin.py) before workers start and on SIGHUP. Prints one JSON
line {"name", "version", "source", "directory"}; exit 0 verified, 2 no model yet, 3 the fast form
disagrees with its reference (refuse to serve it).
"""

from __future__ import annotations

import json
import sys

from app import model_source
from app.fast_model import FastModelError
from app.model_pin import EXIT_REFUSED, EXIT_UNAVAILABLE
from config.app_settings import ApiSettings


def main() -> int:
    settings = ApiSettings()
    try:
        ref = model_source.load(settings).ref
    except model_source.ModelUnavailable as error:
        print(str(error), file=sys.stderr)
        return EXIT_UNAVAILABLE
    except FastModelError as error:
        print(str(error), file=sys.stderr)
        return EXIT_REFUSED
    record = {"name": ref.name, "version": ref.version, "source": ref.source, "directory": str(ref.directory)}
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
