"""Hush what libraries print for their own authors, so a command's (or a benchmark's) own status can be read."""

from __future__ import annotations

import logging
import os
import sys
import warnings

# importing transformers or peft imports torchao where installed: it logs each CUDA-only kernel library that
# cannot load (on every CPU machine), and torch logs the deprecated pytree registrations torchao makes
NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


def quiet_libraries() -> None:
    """transformers' load reports, torchao's kernel-library notices, upstream deprecation warnings: off.
    Call before the libraries load (the transformers verbosity is read at its first import) or after."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("transformers", "peft", "torch", "accelerate"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
