"""Secrets kept out of what is printed, logged or stored: the password of a URI (a tracking server,
an Optuna storage), and `password=`/`token=`-like query parameters.

>>> mask_secrets("postgresql://me:hunter2@db:5432/optuna and https://u:p@h/x?token=abc&a=1")
'postgresql://me:***@db:5432/optuna and https://u:***@h/x?token=***&a=1'
"""

from __future__ import annotations

import re
from typing import Any

# `:/` too: a URI passed through Path() loses one slash (`http:/me:pw@host/model`) and is still shown
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*:/{1,2}[^\s/@:]*):[^\s/@]*@")
# a value ends at a quote (`found 'sqlite:///x.db?password=pw'` keeps its closing quote), or is quoted whole
_QUERY = re.compile(r"(?i)(?P<head>[?&;][^=&\s]*(?:password|passwd|pwd|token|secret|key)[^=&\s]*=)"
                    r"(?:'[^']*'|\"[^\"]*\"|[^&\s'\"]*)")


def mask_secrets(text: str) -> str:
    """`text` with every URI password (and secret query parameter) replaced by `***`."""
    return _QUERY.sub(r"\g<head>***", _USERINFO.sub(r"\g<head>:***@", str(text)))


def mask_values(data: Any) -> Any:
    """`data` (a plain config: dicts, lists, strings) with `mask_secrets` applied to every string in it.

    >>> mask_values({"tracking": {"uri": "https://u:p@h"}, "epochs": 2})
    {'tracking': {'uri': 'https://u:***@h'}, 'epochs': 2}
    """
    if isinstance(data, dict):
        return {key: mask_values(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [mask_values(value) for value in data]
    return mask_secrets(data) if isinstance(data, str) else data
