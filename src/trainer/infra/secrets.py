"""Secrets kept out of what is printed, logged or stored: the password of a URI (a tracking server,
an Optuna storage), and `password=`/`token=`-like query parameters.

>>> mask_secrets("postgresql://me:hunter2@db:5432/optuna and https://u:p@h/x?token=abc&a=1")
'postgresql://me:***@db:5432/optuna and https://u:***@h/x?token=***&a=1'
"""

from __future__ import annotations

import re

# `:/` too: a URI passed through Path() loses one slash (`http:/me:pw@host/model`) and is still shown
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*:/{1,2}[^\s/@:]*):[^\s/@]*@")
_QUERY = re.compile(r"(?i)(?P<head>[?&;][^=&\s]*(?:password|passwd|pwd|token|secret|key)[^=&\s]*=)[^&\s]*")


def mask_secrets(text: str) -> str:
    """`text` with every URI password (and secret query parameter) replaced by `***`."""
    return _QUERY.sub(r"\g<head>***", _USERINFO.sub(r"\g<head>:***@", str(text)))
