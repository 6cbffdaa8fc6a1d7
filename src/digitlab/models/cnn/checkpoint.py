"""Training checkpoints of the CNN: safetensors plus JSON, no pickle.

A checkpoint folder holds

* ``epoch-NNNN.safetensors``: the network's weights (``net.*``), the
  optimizer's moments (``opt.<param>.<name>``) and the torch RNG state
  (``rng.torch``) after epoch NNNN;
* ``checkpoint.json``: the epoch, the name of that weights file, the
  fingerprint of the run (training data and hyper-parameters), the history so
  far and the optimizer's parameter groups. It is written last, so it is the
  commit point: a crash leaves the previous checkpoint whole.

A checkpoint is a file the user hands to ``fit``: reading one trusts nothing
in it. Its weights file must lie in the checkpoint folder, its epoch must be
one the run can reach, and it must come from the same data and parameters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from digitlab._io import atomic_path, atomic_write_text
from digitlab.errors import UserError

__all__ = ["CHECKPOINT_FILE", "fingerprint", "has_checkpoint", "load_checkpoint", "save_checkpoint"]

#: The checkpoint's JSON file (its commit point) inside a checkpoint folder.
CHECKPOINT_FILE = "checkpoint.json"
_WEIGHTS = re.compile(r"^epoch-\d{4,}\.safetensors$")

#: One epoch's record: ``epoch``, ``loss``, ``accuracy`` and ``seconds``.
History = list[dict[str, float]]


def fingerprint(X: NDArray[np.float32], y_idx: NDArray[np.integer], config: Mapping[str, Any]) -> str:
    """Hash of the training data and hyper-parameters: a checkpoint only resumes the same run."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(y_idx, dtype=np.int64).tobytes())
    h.update(json.dumps(dict(config), sort_keys=True).encode())
    return h.hexdigest()


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint to resume from."""
    return (folder / CHECKPOINT_FILE).is_file()


def save_checkpoint(folder: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, epoch: int,
                    history: History, key: str) -> None:
    """Write ``epoch-NNNN.safetensors`` then ``checkpoint.json`` (the commit point), atomically.

    Parameters
    ----------
    folder : Path
        Made if missing; the weights of earlier epochs are removed.
    net, opt
        The network and its optimizer after ``epoch`` epochs.
    epoch : int
        Epochs completed.
    history : list of dict
        One record per completed epoch.
    key : str
        The run's :func:`fingerprint`.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"net.{k}": v.detach().contiguous() for k, v in net.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).detach().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    weights = f"epoch-{epoch:04d}.safetensors"
    with atomic_path(folder / weights) as tmp:
        save_file(tensors, str(tmp))
    doc = {"epoch": epoch, "weights": weights, "fingerprint": key, "history": history,
           "param_groups": opt_state["param_groups"]}
    atomic_write_text(folder / CHECKPOINT_FILE, json.dumps(doc, indent=2))
    for old in folder.glob("epoch-*.safetensors"):
        if old.name != weights:
            old.unlink(missing_ok=True)


def load_checkpoint(folder: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, key: str,
                    epochs: int) -> tuple[int, History]:
    """Restore net, optimizer and RNG from ``folder``.

    Parameters
    ----------
    folder : Path
    net, opt
        A fresh network and optimizer of the run; restored in place.
    key : str
        The run's :func:`fingerprint`; the checkpoint's must equal it.
    epochs : int
        The run's number of epochs; the checkpoint's epoch cannot exceed it.

    Returns
    -------
    epoch : int
        Epochs done.
    history : list of dict

    Raises
    ------
    UserError
        The checkpoint is unreadable or malformed, names a weights file outside
        ``folder``, has an epoch outside ``0..epochs``, or comes from other
        data or parameters. The message says how to start afresh.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    def refuse(why: str) -> UserError:
        return UserError(f"{folder}: {why}; remove the folder to start afresh")

    try:
        doc = json.loads((folder / CHECKPOINT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise refuse(f"cannot read {CHECKPOINT_FILE} ({exc})") from None
    if not isinstance(doc, dict):
        raise refuse(f"{CHECKPOINT_FILE} must be a JSON object, got {type(doc).__name__}")
    if doc.get("fingerprint") != key:
        raise UserError(f"{folder}: the checkpoint comes from other data or parameters; "
                        "use the same ones to resume, or another checkpoint folder")
    epoch, name, history = doc.get("epoch"), doc.get("weights"), doc.get("history")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= epochs:
        raise refuse(f"the checkpoint's epoch must be an integer in 0..{epochs} (the run's epochs), got {epoch!r}")
    if not isinstance(name, str) or not _WEIGHTS.match(name):
        raise refuse(f"the checkpoint's weights must name an epoch-NNNN.safetensors file in the folder, got {name!r}")
    weights = folder / name
    if weights.resolve().parent != folder.resolve():  # a symbolic link out of the folder
        raise refuse(f"the checkpoint's weights file {name} lies outside the checkpoint folder")
    if not isinstance(history, list) or len(history) != epoch or not all(isinstance(h, dict) for h in history):
        raise refuse(f"the checkpoint's history must list {epoch} epochs")
    try:
        tensors = load_file(str(weights))
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, param = key.split(".", 2)
                state.setdefault(int(pid), {})[param] = value
        opt.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, SafetensorError) as exc:
        raise refuse(f"cannot restore the checkpoint ({type(exc).__name__}: {exc})") from None
    return epoch, history
