"""In a notebook, ``digitlab.evaluate`` and ``digitlab.explain`` are the functions, whatever cells ran before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_functions_keep_their_names_after_their_modules_are_imported() -> None:
    code = ("import digitlab\n"
            "from digitlab.workflows import train\n"      # imports the module digitlab.evaluate
            "import digitlab.explain\n"
            "from digitlab.evaluate import Evaluation\n"
            "import types\n"
            "assert callable(digitlab.evaluate) and not isinstance(digitlab.evaluate, types.ModuleType)\n"
            "assert callable(digitlab.explain) and not isinstance(digitlab.explain, types.ModuleType)\n"
            "assert digitlab.evaluate.__module__ == 'digitlab.evaluate' and Evaluation is digitlab.Evaluation\n"
            "import sys; assert isinstance(sys.modules['digitlab.explain'], types.ModuleType)\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)})
