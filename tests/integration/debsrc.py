"""Small Debian source packages of the tests' own, made with dpkg-source on the host.

Native ``3.0 (native)`` packages whose debian/rules is plain make (no
debhelper), so that they build in any root with build-essential alone unless
a test gives them more build dependencies.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

RULES_TEMPLATE = """\
#!/usr/bin/make -f
SHELL := /bin/bash
PKG := {binary}

build build-arch build-indep:
{build}

binary binary-arch binary-indep: build
\tinstall -d debian/tmp/DEBIAN debian/tmp/usr/share/doc/$(PKG)
\tfor s in postinst postrm; do if [ -f debian/$$s ]; then install -m 755 debian/$$s debian/tmp/DEBIAN/; fi; done
\techo "{binary} was built by deb-mock's tests" > debian/tmp/usr/share/doc/$(PKG)/README
\tdpkg-gencontrol -p$(PKG) -Pdebian/tmp
\tdpkg-deb --root-owner-group --build debian/tmp ..

clean:
\trm -rf debian/tmp debian/files debian/substvars
"""


def make_source(top: Path, name: str, *, version: str = "1.0", build: str = "\ttrue",
                build_depends: str = "", binary: str | None = None,
                files: dict[str, str] | None = None, architecture: str = "all") -> Path:
    """Create ``name_version.dsc`` (and its tarball) under ``top``; return the .dsc path.

    ``files`` adds files to the tree by their relative path (``debian/postinst``
    and ``debian/postrm`` go into the package, ``debian/tests/*`` are its
    autopkgtests; scripts under debian/ are made executable).
    """
    binary = binary or name
    tree = top / f"{name}-{version}"
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
    depends = f"Build-Depends: {build_depends}\n" if build_depends else ""
    (tree / "debian" / "control").write_text(textwrap.dedent(f"""\
        Source: {name}
        Section: misc
        Priority: optional
        Maintainer: deb-mock tests <tests@deb-mock.invalid>
        Rules-Requires-Root: no
        Standards-Version: 4.6.2
        """) + depends + textwrap.dedent(f"""\

        Package: {binary}
        Architecture: {architecture}
        Description: test package {binary}
         A package of deb-mock's test suite.
        """))
    (tree / "debian" / "changelog").write_text(textwrap.dedent(f"""\
        {name} ({version}) unstable; urgency=medium

          * Test package.

         -- deb-mock tests <tests@deb-mock.invalid>  Mon, 02 Nov 2026 10:00:00 +0000
        """))
    rules = tree / "debian" / "rules"
    rules.write_text(RULES_TEMPLATE.format(binary=binary, build=build))
    rules.chmod(0o755)
    for relative, text in (files or {}).items():
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if text.startswith("#!"):
            path.chmod(0o755)
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=top, check=True, capture_output=True)
    return top / f"{name}_{version}.dsc"
