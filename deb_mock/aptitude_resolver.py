"""The aptitude resolver for build dependencies (sbuild's ``--build-dep-resolver=aptitude``).

apt's resolver takes the first alternative that can be installed and gives
up when that one cannot; aptitude searches among all alternatives and
versions, which some suites need (experimental, backports: sbuild uses it
there). aptitude cannot satisfy a relation given on its command line, so,
as sbuild does, the relations go into the Depends/Conflicts of a dummy
binary package, reduced by dpkg's own parser (``Dpkg::Deps``, from dpkg-dev,
which every build root has) to this architecture and these build profiles;
a local repository in the build's throw-away layer offers it, and aptitude
installs it, and with it the build dependencies. aptitude itself goes into the
same throw-away layer. Pure functions: the builder runs the command.
"""

from __future__ import annotations

from collections.abc import Sequence

#: the dummy package's name; its presence after aptitude ran is the proof that it resolved
DUMMY = "deb-mock-build-deps"
#: how apt's error messages name the script ($0)
NAME = "aptitude install (build dependencies)"
#: what must be in the root before the script runs (dpkg-scanpackages comes with dpkg-dev)
PACKAGES = ("aptitude",)
#: aptitude's resolver as a buildd wants it: keep what is installed, never remove an Essential
#: package, prefer default versions, and never answer by leaving the dummy uninstalled
_OPTIONS = (
    "APT::Install-Recommends=false",
    "Aptitude::ProblemResolver::StepScore=100",
    "Aptitude::ProblemResolver::SolutionCost=safety, priority, non-default-versions",
    f"Aptitude::ProblemResolver::Hints::KeepDummy=reject {DUMMY} :UNINST",
    "Aptitude::ProblemResolver::Keep-All-Tier=55000",
    "Aptitude::ProblemResolver::Remove-Essential-Tier=maximum",
    "Dpkg::Options::=--force-confold",
)

_SCRIPT = r"""set -e
depends=$1; conflicts=$2; arch=$3; profiles=$4; shift 4
dir=/var/lib/deb-mock-resolver
rm -rf "$dir"; mkdir -p "$dir/pkg/DEBIAN"
reduce() {
  perl -MDpkg::Deps -e '
    my ($text, $arch, $profiles) = @ARGV;
    my $deps = deps_parse($text, reduce_restrictions => 1, build_dep => 1, host_arch => $arch,
                          build_arch => $arch, build_profiles => [split /,/, $profiles]);
    defined $deps or die "deb-mock: cannot parse the build relations: $text\n";
    my $out = $deps->output; $out =~ s/:native//g; print $out;' "$1" "$arch" "$profiles"
}
{
  echo "Package: DUMMY"
  echo "Version: 1"
  echo "Architecture: $arch"
  echo "Maintainer: deb-mock <deb-mock@localhost>"
  echo "Description: build dependencies of the package being built"
  d=$(reduce "$depends"); [ -z "$d" ] || echo "Depends: $d"
  c=$(reduce "$conflicts"); [ -z "$c" ] || echo "Conflicts: $c"
} > "$dir/pkg/DEBIAN/control"
echo "deb-mock: the build dependencies as aptitude gets them:"; sed 's/^/  /' "$dir/pkg/DEBIAN/control"
dpkg-deb --root-owner-group --build "$dir/pkg" "$dir/DUMMY.deb" >/dev/null
(cd "$dir" && dpkg-scanpackages . > Packages 2>/dev/null)
list=/etc/apt/sources.list.d/DUMMY.list
echo "deb [trusted=yes] file:$dir ./" > "$list"
apt-get -o Dir::Etc::SourceList="$list" -o Dir::Etc::SourceParts=- -o APT::Get::List-Cleanup=false update
status=0
aptitude --assume-yes --without-recommends "$@" install DUMMY || status=$?
# the dummy stays installed (it holds the build dependencies); its repository goes
rm -f "$list" /var/lib/apt/lists/*deb-mock-resolver*; rm -rf "$dir"
if [ "$(dpkg-query -W -f '${Status}' DUMMY 2>/dev/null)" != "install ok installed" ]; then
  echo "E: aptitude could not install the build dependencies (exit code $status)"
  exit 1
fi
""".replace("DUMMY", DUMMY)


def build_deps_command(depends: Sequence[str], conflicts: Sequence[str], arch: str,
                       profiles: Sequence[str]) -> list[str]:
    """The script that makes the dummy package and lets aptitude install it (run as root in the build's layer).

    ``depends``/``conflicts``: the Build-Depends(-Arch/-Indep) and
    Build-Conflicts fields that apply, as the .dsc spells them.
    """
    options = [word for option in _OPTIONS for word in ("-o", option)]
    return ["/bin/sh", "-c", _SCRIPT, NAME, ", ".join(["build-essential:native", *(d for d in depends if d.strip())]),
            ", ".join(c for c in conflicts if c.strip()), arch, ",".join(profiles), *options]
