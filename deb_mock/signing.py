"""Sign a build's results on the host with debsign, as the user who runs deb-mock (sbuild's -k/--keyid).

Signing is the operator's act with the operator's keyring (``$GNUPGHOME`` or
``~/.gnupg``), so it runs on the host, after the build, over the files the
result directory holds: debsign signs each ``.changes`` with the
``.buildinfo`` and ``.dsc`` it lists. A key that cannot sign leaves every
file as it was before (copies are put back), unsigned, and the run fails with
exit 13 and debsign's message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from deb_mock.errors import SigningFailed
from deb_mock.result import Artifact


def sign_results(keyid: str, artifacts: list[Artifact]) -> dict[str, Any]:
    """debsign every .changes among ``artifacts`` with ``keyid``; returns what result.json records."""
    changes = [Path(a.path) for a in artifacts if a.path.endswith(".changes")]
    touched = [Path(a.path) for a in artifacts if a.path.endswith((".changes", ".buildinfo", ".dsc"))]
    if shutil.which("debsign") is None:
        raise SigningFailed("-k/--keyid needs debsign on the host", hint="apt-get install devscripts")
    saved = {path: path.read_bytes() for path in touched}
    for path in changes:
        result = subprocess.run(["debsign", "--no-conf", f"-k{keyid}", "--re-sign", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                                env=os.environ.copy())
        if result.returncode != 0:
            for original, data in saved.items():
                original.write_bytes(data)
            tail = "\n".join(result.stdout.splitlines()[-8:])
            raise SigningFailed(f"signing {path.name} with key {keyid} failed; the results stay unsigned:\n{tail}",
                                hint="check the key with gpg --list-secret-keys (GNUPGHOME chooses the keyring)")
    return {"keyid": keyid, "files": sorted(str(path) for path in touched)}
