"""hub_config.py, where the deploy mounts it in the hub container, loaded as a module by the hub's own programs.

JupyterHub reads the file as its config (``jupyterhub --config PATH``); the page services' launcher
(tinytorch_service.py), the database move (tinytorch_migrate.py) and the first admin's account
(deploy/roles/hub/files/create_admin.py) call its functions.
"""
from __future__ import annotations

import importlib.util
from types import ModuleType

PATH = "/etc/jupyterhub/jupyterhub_config.py"  # as the hub role mounts it (deploy/roles/hub/vars/main.yml)


def load_hub_config() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hub_config", PATH)
    assert spec and spec.loader, "hub_config.py is not a Python file"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
