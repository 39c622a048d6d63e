"""A log file per run: logging records, warnings and progress bars (stderr) all land in one file."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def log_to(path: str | Path, name: str = "dualspace") -> Iterator[logging.Logger]:
    """Send the `dualspace` logger, warnings and stderr (tqdm bars) to `path` for the block; log a failure's traceback."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as f:
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logging.captureWarnings(True)
        logging.getLogger("py.warnings").addHandler(handler)
        try:
            with contextlib.redirect_stderr(f):
                yield logger
        except BaseException:
            logger.exception("failed")
            print(f"dualspace: failed, see {path}", file=sys.stderr)
            raise
        finally:
            logger.removeHandler(handler)
            logging.getLogger("py.warnings").removeHandler(handler)
