"""A remote cache tier in an OCI registry: what one builder prepared, the next one pulls instead of making.

Entries are OCI artifacts with deb-mock's own media types (never runnable
images): a manifest whose config blob is the entry's record (JSON) and
whose one layer is the entry's tarball, tagged ``<kind>-<key>``. The
client speaks the OCI distribution API over the standard library's
http.client: the API needed is five requests (HEAD, GET and PUT of a
manifest, GET and HEAD of a blob, the two-step blob upload), and a library
for it would bring more than it saves; the stdlib also keeps it out of
every run that has no remote cache (it is imported only when one is set).

Pulls stream into a temporary file beside the local entry, check the
blob's sha256 before the caller extracts anything, and appear atomically
(rename). Pushes send only blobs the registry lacks (HEAD first), and a tag
that exists already is left as it is (the first writer wins; a racing
writer's manifest is as valid, since both describe the same key). Every
failure of the registry (down, slow, an error status, a corrupt blob) is a
:class:`RemoteCacheUnavailable` that callers turn into a warning and the
local path.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deb_mock.digests import sha256
from deb_mock.errors import ConfigError
from deb_mock.fileio import temp_name

if TYPE_CHECKING:
    from deb_mock.config.schema import Config

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: deb-mock's own media types: registries store them, container engines refuse to run them
MEDIA_RECORD = "application/vnd.deb-mock.cache.record.v1+json"
MEDIA_TARBALL = "application/vnd.deb-mock.cache.tarball.v1"
MEDIA_SIGNATURE = "application/vnd.deb-mock.cache.signature.v1+pgp"
ARTIFACT_TYPE = "application/vnd.deb-mock.cache.v1"
#: what a signature covers: the tag and the manifest's digest (which names every blob by its digest)
STATEMENT = "deb-mock remote cache entry\ntag {tag}\nmanifest {digest}\n"
KINDS = ("root", "build-deps")
#: seconds to wait for the registry to answer (connect, each read): a slow registry is a miss, not a hang
TIMEOUT = 30.0
CHUNK = 1 << 20
_URL = re.compile(r"oci://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?"
                  r"/(?P<path>[a-z0-9]+(?:[._/-][a-z0-9]+)*)")


class RemoteCacheUnavailable(Exception):
    """The registry could not serve or take an entry: the caller warns and goes on locally."""


@dataclasses.dataclass(frozen=True)
class Location:
    """``oci://HOST[:PORT]/PATH``: a repository in a registry (http on loopback, https elsewhere)."""

    host: str
    port: int
    repository: str

    @classmethod
    def parse(cls, url: str) -> Location:
        match = _URL.fullmatch(url)
        if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
            raise ConfigError(f"'{url}' is not oci://HOST[:PORT]/PATH (a lower-case repository path)")
        host = match.group("host").strip("[]")
        return cls(host, int(match.group("port") or (80 if _is_loopback(host) else 443)), match.group("path"))

    @property
    def secure(self) -> bool:
        return not _is_loopback(self.host)

    def __str__(self) -> str:
        return f"oci://{self.host}:{self.port}/{self.repository}"


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A pulled entry: its record, and the sha256 its tarball was verified against while it was written."""

    record: dict[str, Any]
    sha256: str


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def registry_for(config: Config, kind: str) -> Registry | None:
    """The registry for caches of ``kind`` ("root", "build-deps"), if the config names one and may use it."""
    remote = config.remote_cache
    if not remote.url or kind not in remote.kinds or config.offline:
        return None
    return Registry(Location.parse(remote.url), Path(remote.credentials) if remote.credentials else None,
                    sign_key=remote.sign_key, keyrings=tuple(Path(k) for k in remote.keyrings))


def tag_for(kind: str, key: str) -> str:
    """The tag of an entry: ``root-<digest>`` (tags allow 128 characters of [A-Za-z0-9_.-])."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{kind}-{key}")[:128]


class Registry:
    """One repository of an OCI registry."""

    def __init__(self, location: Location, credentials: Path | None = None, timeout: float = TIMEOUT, *,
                 sign_key: str | None = None, keyrings: tuple[Path, ...] = ()) -> None:
        self.location = location
        self.timeout = timeout
        self.auth = _basic_auth(credentials) if credentials else None
        #: pushes are signed with this OpenPGP key (the invoking user's gpg)
        self.sign_key = sign_key
        #: with keyrings, an entry counts only with a good signature by one of their keys
        self.keyrings = keyrings

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                 redirects: int = 3) -> tuple[Any, Any]:
        """One request: the open response and its connection (the caller reads, then closes the connection).

        Network errors are unavailability."""
        import http.client
        import urllib.parse

        host, port, target, secure = self.location.host, self.location.port, path, self.location.secure
        for _ in range(redirects + 1):
            cls = http.client.HTTPSConnection if secure else http.client.HTTPConnection
            connection = cls(host, port, timeout=self.timeout)
            sent = dict(headers or {})
            if self.auth and host == self.location.host:
                sent["Authorization"] = self.auth
            try:
                connection.request(method, target, body=body, headers=sent)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise RemoteCacheUnavailable(f"{self.location}: {exc}") from None
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                base = f"{'https' if secure else 'http'}://{host}:{port}{target}"
                moved = urllib.parse.urljoin(base, response.getheader("Location"))
                response.read()
                connection.close()
                parsed = urllib.parse.urlsplit(moved)
                secure = parsed.scheme == "https"  # a redirect (to blob storage, say) names its own scheme
                host, port = parsed.hostname or host, parsed.port or (443 if secure else 80)
                target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
                continue
            return response, connection
        raise RemoteCacheUnavailable(f"{self.location}: too many redirects for {path}")

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              ok: tuple[int, ...] = (200,)) -> tuple[int, bytes, Any]:
        response, connection = self._request(method, path, body, headers)
        try:
            data = response.read()
        except OSError as exc:
            raise RemoteCacheUnavailable(f"{self.location}: {exc}") from None
        finally:
            connection.close()
        if response.status not in ok:
            raise RemoteCacheUnavailable(f"{self.location}: {method} {path}: HTTP {response.status} "
                                         f"{data[:200].decode('utf-8', 'replace')}")
        return response.status, data, response

    def _path(self, what: str, name: str) -> str:
        return f"/v2/{self.location.repository}/{what}/{name}"

    # -- entries ---------------------------------------------------------------------------------

    def manifest(self, tag: str, layer_type: str = MEDIA_TARBALL) -> dict[str, Any] | None:
        """The entry's manifest (with its ``digest``), None when the registry has no such tag."""
        status, data, _ = self._call("GET", self._path("manifests", tag), headers={"Accept": MEDIA_MANIFEST},
                                     ok=(200, 404))
        if status == 404:
            return None
        try:
            manifest = json.loads(data)
        except ValueError:
            raise RemoteCacheUnavailable(f"{self.location}: the manifest of {tag} is not JSON") from None
        layers, config = manifest.get("layers"), manifest.get("config")
        if not (isinstance(layers, list) and len(layers) == 1 and isinstance(config, dict)
                and config.get("mediaType") == MEDIA_RECORD and layers[0].get("mediaType") == layer_type):
            raise RemoteCacheUnavailable(f"{self.location}: {tag} is not a deb-mock cache entry")
        return {**manifest, "digest": "sha256:" + sha256(data).hexdigest()}

    def _check_signature(self, tag: str, manifest_digest: str) -> None:
        """With keyrings: the entry's signature (tag ``TAG.sig``) must be good; unsigned or bad is a miss."""
        if not self.keyrings:
            return
        signature = self.manifest(f"{tag}.sig", MEDIA_SIGNATURE)
        if signature is None:
            raise RemoteCacheUnavailable(f"{self.location}: {tag} is not signed (keyrings are configured)")
        data = self._blob_bytes(signature["layers"][0]["digest"])
        statement = STATEMENT.format(tag=tag, digest=manifest_digest).encode()
        report = _gpgv(self.keyrings, statement, data)
        if report is not None:
            raise RemoteCacheUnavailable(f"{self.location}: {tag} has no good signature by the keyrings: {report}")

    def fetch(self, tag: str, tarball: Path) -> Fetched | None:
        """Pull the entry ``tag``: its tarball to ``tarball`` (atomically, digest checked) and its record.

        None when the registry has no such entry. The tarball's sha256 comes
        with the record: it was checked while the blob streamed in, so a
        caller need not read the file again to know it.
        """
        manifest = self.manifest(tag)
        if manifest is None:
            return None
        self._check_signature(tag, manifest["digest"])
        record_data = self._blob_bytes(manifest["config"]["digest"])
        layer = manifest["layers"][0]
        partial = temp_name(tarball)  # a killed pull leaves it to the cache's own clean-up of temporary files
        try:
            self._blob_to_file(str(layer["digest"]), int(layer["size"]), partial)
            os.replace(partial, tarball)
        finally:
            partial.unlink(missing_ok=True)
        record = json.loads(record_data)
        if not isinstance(record, dict):
            raise RemoteCacheUnavailable(f"{self.location}: the record of {tag} is not a JSON object")
        return Fetched(dict(record), str(layer["digest"]).removeprefix("sha256:"))

    def publish(self, tag: str, record: dict[str, Any], tarball: Path, digest: str) -> bool:
        """Push the entry (and its signature, with a sign_key) unless the tag exists; True when this call wrote it."""
        if self.manifest(tag) is not None:
            return False
        record_data = json.dumps(record, sort_keys=True).encode()
        manifest = self._manifest_bytes(tag, record_data, MEDIA_TARBALL, f"sha256:{digest}", tarball.stat().st_size)
        signature = b""
        if self.sign_key:  # before anything is sent: an entry that cannot be signed is not pushed
            statement = STATEMENT.format(tag=tag, digest="sha256:" + sha256(manifest).hexdigest())
            signature = _gpg_sign(self.sign_key, statement.encode())
        record_digest = "sha256:" + sha256(record_data).hexdigest()
        self._send_blobs({record_digest: record_data, f"sha256:{digest}": tarball})
        self._call("PUT", self._path("manifests", tag), body=manifest, headers={"Content-Type": MEDIA_MANIFEST},
                   ok=(201,))
        if signature:
            signed = json.dumps({"tag": tag}, sort_keys=True).encode()
            sig_digest = "sha256:" + sha256(signature).hexdigest()
            self._send_blobs({"sha256:" + sha256(signed).hexdigest(): signed, sig_digest: signature})
            self._call("PUT", self._path("manifests", f"{tag}.sig"), headers={"Content-Type": MEDIA_MANIFEST},
                       body=self._manifest_bytes(f"{tag}.sig", signed, MEDIA_SIGNATURE, sig_digest, len(signature)),
                       ok=(201,))
        return True

    @staticmethod
    def _manifest_bytes(tag: str, record: bytes, layer_type: str, layer_digest: str, layer_size: int) -> bytes:
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": MEDIA_RECORD, "digest": "sha256:" + sha256(record).hexdigest(),
                       "size": len(record)},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
            "annotations": {"org.opencontainers.image.title": tag},
        }
        return json.dumps(manifest, sort_keys=True).encode()

    def _send_blobs(self, blobs: dict[str, bytes | Path]) -> None:
        """Upload the blobs the registry lacks (HEAD first)."""
        for blob_digest, source in blobs.items():
            status, _, _ = self._call("HEAD", self._path("blobs", blob_digest), ok=(200, 404))
            if status == 404:
                self._upload(blob_digest, source)

    # -- blobs -----------------------------------------------------------------------------------

    def _blob_bytes(self, digest: str) -> bytes:
        _, data, _ = self._call("GET", self._path("blobs", digest))
        if "sha256:" + sha256(data).hexdigest() != digest:
            raise RemoteCacheUnavailable(f"{self.location}: blob {digest} does not match its digest")
        return data

    def _blob_to_file(self, digest: str, size: int, target: Path) -> None:
        """Stream a blob into ``target``, hashing as it comes; a mismatch is unavailability (nothing kept)."""
        import hashlib  # OpenSSL for a tarball of hundreds of MB

        response, connection = self._request("GET", self._path("blobs", digest))
        hasher = hashlib.sha256()
        written = 0
        try:
            if response.status != 200:
                raise RemoteCacheUnavailable(f"{self.location}: GET blob {digest}: HTTP {response.status}")
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            with os.fdopen(fd, "wb") as out:
                while chunk := response.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise RemoteCacheUnavailable(f"{self.location}: reading blob {digest}: {exc}") from None
        finally:
            connection.close()
        if written != size or f"sha256:{hasher.hexdigest()}" != digest:
            raise RemoteCacheUnavailable(f"{self.location}: blob {digest} is corrupt (its sha256 or size differs)")

    def _upload(self, digest: str, source: bytes | Path) -> None:
        """The two-step upload: POST for a session, PUT of the whole blob with its digest."""
        _, _, response = self._call("POST", self._path("blobs", "uploads/"), ok=(202,))
        location = response.getheader("Location") or ""
        if not location:
            raise RemoteCacheUnavailable(f"{self.location}: the registry gave no upload location")
        import urllib.parse

        parsed = urllib.parse.urlsplit(location)
        query = parsed.query + ("&" if parsed.query else "") + urllib.parse.urlencode({"digest": digest})
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if isinstance(source, bytes):
            self._call("PUT", f"{parsed.path}?{query}", body=source, headers=headers, ok=(201,))
            return
        with source.open("rb") as body:
            self._call("PUT", f"{parsed.path}?{query}", body=body, headers=headers, ok=(201,))


def _gpg_sign(key: str, data: bytes) -> bytes:
    """A detached binary signature of ``data`` by ``key``, with the invoking user's gpg (GNUPGHOME)."""
    import subprocess

    try:
        result = subprocess.run(["gpg", "--batch", "--no-tty", "--local-user", key, "--detach-sign", "--output", "-"],
                                input=data, capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RemoteCacheUnavailable(f"signing with {key}: {exc}") from None
    if result.returncode != 0 or not result.stdout:
        raise RemoteCacheUnavailable(f"signing with {key} failed: {result.stderr.decode(errors='replace')[-300:]}")
    return bytes(result.stdout)


def _gpgv(keyrings: tuple[Path, ...], data: bytes, signature: bytes) -> str | None:
    """None when ``signature`` is a good signature of ``data`` by a key in ``keyrings``, else gpgv's words."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="deb-mock-gpgv-") as work:
        data_path, sig_path = Path(work, "statement"), Path(work, "statement.sig")
        data_path.write_bytes(data)
        sig_path.write_bytes(signature)
        argv = ["gpgv"]
        for keyring in keyrings:
            argv += ["--keyring", str(keyring.absolute())]
        try:
            result = subprocess.run([*argv, str(sig_path), str(data_path)], capture_output=True, text=True,
                                    check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["bad signature"])[-1]


def _basic_auth(path: Path) -> str:
    """``user:password`` from the first line of a credentials file (which should be 0600)."""
    try:
        line = path.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        raise ConfigError(f"remote_cache.credentials: {path}: cannot read a 'user:password' line") from None
    if ":" not in line:
        raise ConfigError(f"remote_cache.credentials: {path}: expected 'user:password'")
    return "Basic " + base64.b64encode(line.encode()).decode()
