"""Download a public cohort described by a manifest: resumable, verified, never half-written.

A manifest (TOML, in ``data_manifests/``) says what a cohort is - counts, endpoints, licence,
citation - and where its files come from. Each ``[[source]]`` is resolved into a list of
files with their sizes and, where the archive publishes them, md5 checksums:

``kind = "gdc-files"``
    A GDC API ``/files`` query (``filters`` as JSON); files land in ``<file_id>/<file_name>``
    like the GDC client's, and a ``gdc_sample_sheet.tsv`` records which sample each file is.
``kind = "gdc-cases"``
    A GDC API ``/cases`` query saved as one TSV (clinical data).
``kind = "tcia-series"``
    An NBIA API ``getSeries`` listing of a TCIA collection; each series arrives as a zip,
    is unpacked into ``<collection>/<PatientID>/<StudyUID>/<SeriesUID>/`` and the zip deleted
    (the lock file keeps its md5 and the number of files unpacked).
``kind = "files"``
    An explicit list of ``url``, ``path``, ``size``, ``md5``.

Downloads go to ``<name>.part`` and resume from its length with an HTTP ``Range`` request
after an interruption; only a complete file whose size and md5 match is renamed to its final
name. ``mmsurv-fetch.lock.json`` in the destination records every file fetched, with its
checksum, so a second run skips what is already there and a collaborator can verify a copy.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import atomic_path
from .io.gdc import write_sample_sheet

__all__ = ["Manifest", "RemoteFile", "load_manifest", "resolve_manifest", "download_file", "fetch_manifest", "FetchError", "LOCK_NAME"]

LOCK_NAME = "mmsurv-fetch.lock.json"
_CHUNK = 1 << 20
_USER_AGENT = "mmsurv-fetch/0.1"


class FetchError(RuntimeError):
    """A download failed or did not verify; the message names the file and the reason."""


@dataclass
class RemoteFile:
    """One file to fetch: where from, where to (relative to the destination), and how to check it."""

    url: str
    path: str
    size: int | None = None
    md5: str | None = None
    source: str = ""
    unpack_to: str | None = None  # a zip unpacked into this folder (TCIA series)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class Manifest:
    """A parsed manifest: ``cohort`` metadata, ``expected`` counts, ``endpoints`` and ``sources``."""

    path: Path
    cohort: dict[str, Any]
    expected: dict[str, Any]
    endpoints: dict[str, str]
    sources: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return str(self.cohort["name"])


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and check a manifest file.

    Raises
    ------
    ValueError
        Missing sections or fields, or an unknown source kind (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from error
    for section in ("cohort", "source"):
        if section not in data:
            raise ValueError(f"{path}: missing [{section}] section")
    for key in ("name", "licence", "citation"):
        if key not in data["cohort"]:
            raise ValueError(f"{path}: [cohort] needs {key!r}")
    for index, source in enumerate(data["source"]):
        if source.get("kind") not in _RESOLVERS:
            raise ValueError(f"{path}: source {index} has kind {source.get('kind')!r}; expected one of {sorted(_RESOLVERS)}")
    return Manifest(path, data["cohort"], data.get("expected", {}), data.get("endpoints", {}), list(data["source"]))


def _get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 60.0) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **(headers or {})})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - URLs come from the manifest


def _get_bytes(url: str) -> bytes:
    try:
        with _get(url) as response:
            return response.read()
    except urllib.error.URLError as error:
        raise FetchError(f"{url}: request failed ({error})") from error


def _api(source: dict[str, Any], overrides: dict[str, str]) -> str:
    return overrides.get(source["kind"].split("-")[0], source["api"]).rstrip("/")


def _resolve_gdc_files(source: dict[str, Any], overrides: dict[str, str]) -> list[RemoteFile]:
    api = _api(source, overrides)
    fields = "file_id,file_name,file_size,md5sum,data_type,cases.submitter_id,cases.project.project_id,cases.samples.submitter_id,cases.samples.sample_type"
    files, offset, page = [], 0, int(source.get("page_size", 500))
    while True:
        query = urllib.parse.urlencode({"filters": json.dumps(source["filters"]), "fields": fields, "format": "JSON", "size": page, "from": offset})
        payload = json.loads(_get_bytes(f"{api}/files?{query}"))
        hits = payload["data"]["hits"]
        for hit in hits:
            case = (hit.get("cases") or [{}])[0]
            samples = case.get("samples") or [{}]
            files.append(
                RemoteFile(
                    url=f"{api}/data/{hit['file_id']}",
                    path=f"{source.get('folder', '.')}/{hit['file_id']}/{hit['file_name']}",
                    size=int(hit["file_size"]),
                    md5=hit.get("md5sum"),
                    source=source["name"],
                    annotations={
                        "file_id": hit["file_id"],
                        "file_name": hit["file_name"],
                        "data_type": hit.get("data_type", ""),
                        "case_id": case.get("submitter_id", ""),
                        "project_id": (case.get("project") or {}).get("project_id", ""),  # a GDC sample sheet's "Project ID"
                        "sample_id": samples[0].get("submitter_id", ""),
                        "sample_type": samples[0].get("sample_type", ""),
                    },
                )
            )
        offset += len(hits)
        if not hits or offset >= int(payload["data"]["pagination"]["total"]):
            return files


def _resolve_gdc_cases(source: dict[str, Any], overrides: dict[str, str]) -> list[RemoteFile]:
    api = _api(source, overrides)
    query = urllib.parse.urlencode(
        {"filters": json.dumps(source["filters"]), "fields": ",".join(source["fields"]), "format": "TSV", "size": int(source.get("size", 10_000))}
    )
    return [RemoteFile(url=f"{api}/cases?{query}", path=f"{source.get('folder', '.')}/{source['file']}", source=source["name"])]


def _resolve_tcia_series(source: dict[str, Any], overrides: dict[str, str]) -> list[RemoteFile]:
    api = _api(source, overrides)
    files = []
    for modality in source.get("modalities", [None]):
        params = {"Collection": source["collection"], "format": "json"} | ({"Modality": modality} if modality else {})
        for series in json.loads(_get_bytes(f"{api}/getSeries?{urllib.parse.urlencode(params)}")):
            uid = series["SeriesInstanceUID"]
            folder = f"{source.get('folder', source['collection'])}/{series['PatientID']}/{series['StudyInstanceUID']}/{uid}"
            files.append(
                RemoteFile(
                    url=f"{api}/getImage?{urllib.parse.urlencode({'SeriesInstanceUID': uid})}",
                    path=f".zips/{uid}.zip",
                    size=int(series["FileSize"]) if series.get("FileSize") else None,
                    md5=series.get("md5"),
                    source=source["name"],
                    unpack_to=folder,
                    annotations={"patient_id": series["PatientID"], "modality": series.get("Modality", ""), "series_uid": uid},
                )
            )
    return files


def _resolve_files(source: dict[str, Any], overrides: dict[str, str]) -> list[RemoteFile]:
    return [RemoteFile(url=f["url"], path=f["path"], size=f.get("size"), md5=f.get("md5"), source=source["name"]) for f in source["file"]]


_RESOLVERS: dict[str, Callable[[dict[str, Any], dict[str, str]], list[RemoteFile]]] = {
    "gdc-files": _resolve_gdc_files,
    "gdc-cases": _resolve_gdc_cases,
    "tcia-series": _resolve_tcia_series,
    "files": _resolve_files,
}


def resolve_manifest(manifest: Manifest, *, api_overrides: dict[str, str] | None = None, only: list[str] | None = None) -> list[RemoteFile]:
    """Turn a manifest's sources into the list of files to download.

    Parameters
    ----------
    manifest : Manifest
    api_overrides : dict, optional
        ``{"gdc": url, "tcia": url}`` replaces the manifest's API base URLs (a mirror, or a
        local test server).
    only : list of str, optional
        Names of the sources to resolve; default all.
    """
    files = []
    for source in manifest.sources:
        if only and source["name"] not in only:
            continue
        files.extend(_RESOLVERS[source["kind"]](source, api_overrides or {}))
    return files


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - integrity check against the archive's published md5, not security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(remote: RemoteFile, destination: Path, *, retries: int = 3, backoff_s: float = 0.5) -> dict[str, Any]:
    """Download one file with resume, then verify size and md5 before giving it its final name.

    Returns the lock entry (path, url, size, md5, source). Raises :class:`FetchError` if the
    file cannot be completed or does not verify; an unverified download is deleted, an
    interrupted one stays as ``<name>.part`` for the next attempt to resume.
    """
    final = destination / remote.path
    partial = final.with_name(final.name + ".part")
    final.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        have = partial.stat().st_size if partial.exists() else 0
        if remote.size is not None and have > remote.size:
            partial.unlink()
            have = 0
        # resume only what has a known size: a query's answer (no size listed) may change between attempts
        headers = {"Range": f"bytes={have}-"} if have and remote.size is not None else {}
        try:
            if remote.size is None or have < remote.size:
                with _get(remote.url, headers=headers) as response:
                    resumed = response.status == 206
                    expected_length = response.headers.get("Content-Length")
                    with open(partial, "ab" if resumed else "wb") as handle:
                        received = 0
                        for block in iter(lambda: response.read(_CHUNK), b""):
                            handle.write(block)
                            received += len(block)
                    if expected_length is not None and received < int(expected_length):
                        raise ConnectionError(f"connection closed after {received} of {expected_length} bytes")
            break
        except urllib.error.HTTPError as error:
            if error.code < 500:  # 404, 403...: asking again will not help
                raise FetchError(f"{remote.path}: the server answered {error.code} {error.reason} for {remote.url}") from error
            if attempt == retries:
                raise FetchError(f"{remote.path}: the server answered {error.code} {error.reason} {retries + 1} times") from error
            time.sleep(backoff_s * (attempt + 1))
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as error:
            if attempt == retries:
                raise FetchError(
                    f"{remote.path}: download interrupted and not completed after {retries + 1} attempts "
                    f"({error}); {partial.name} is kept and the next run resumes it"
                ) from error
            time.sleep(backoff_s * (attempt + 1))
    size = partial.stat().st_size
    if remote.size is not None and size != remote.size:
        raise FetchError(f"{remote.path}: got {size:,} bytes, the archive lists {remote.size:,}; {partial.name} is kept for resuming")
    md5 = _md5(partial)
    if remote.md5 and md5 != remote.md5.lower():
        partial.unlink()
        raise FetchError(f"{remote.path}: md5 {md5} does not match the archive's {remote.md5}; the download was deleted, fetch again")
    os.replace(partial, final)
    entry = {"path": remote.path, "url": remote.url, "size": size, "md5": md5, "source": remote.source}
    if remote.unpack_to:
        entry["unpacked_to"] = remote.unpack_to
        entry["unpacked_files"] = _unpack(final, destination / remote.unpack_to)
        final.unlink()  # the lock keeps its md5; the series itself lives unpacked
    return entry


def _unpack(archive: Path, folder: Path) -> int:
    """Unpack a TCIA series zip into ``folder``: extracted next to it, then renamed into place."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = bundle.namelist()
            folder.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            try:
                for member in names:
                    if not (scratch / member).resolve().is_relative_to(scratch.resolve()):
                        raise FetchError(f"{archive}: unsafe path {member!r} in the zip")
                bundle.extractall(scratch)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(scratch, folder)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            return len(names)
    except zipfile.BadZipFile as error:
        archive.unlink()
        raise FetchError(f"{archive}: not a valid zip ({error}); deleted, fetch again") from error


def _still_there(destination: Path, entry: dict[str, Any], remote: RemoteFile) -> bool:
    """Whether a file recorded in the lock is still on disk as it was fetched."""
    if remote.md5 and entry["md5"] != remote.md5.lower():
        return False  # the archive has a new version
    if entry.get("unpacked_to"):
        folder = destination / entry["unpacked_to"]
        return folder.is_dir() and sum(1 for p in folder.rglob("*") if p.is_file()) == entry["unpacked_files"]
    on_disk = destination / entry["path"]
    return on_disk.is_file() and on_disk.stat().st_size == entry["size"]


def _read_lock(destination: Path) -> dict[str, Any]:
    lock = destination / LOCK_NAME
    return json.loads(lock.read_text()) if lock.is_file() else {"files": {}}


def _write_lock(destination: Path, manifest: Manifest, files: dict[str, Any]) -> None:
    content = {
        "manifest": str(manifest.path.name),
        "cohort": manifest.name,
        "files": files,
        "manifest_sha256": hashlib.sha256(manifest.path.read_bytes()).hexdigest(),
    }
    with atomic_path(destination / LOCK_NAME) as partial:
        partial.write_text(json.dumps(content, indent=1, sort_keys=True))


def fetch_manifest(
    manifest_path: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    api_overrides: dict[str, str] | None = None,
    only: list[str] | None = None,
    retries: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """Resolve a manifest and download everything it lists into ``destination``.

    Files already recorded in the lock file with the same size and md5 are skipped. Every
    failure is collected and reported together at the end, so one bad file does not stop
    the others; the lock file records what was fetched either way.

    Returns
    -------
    dict
        ``fetched``, ``skipped`` and ``failed`` counts and ``errors`` (messages).

    Raises
    ------
    FetchError
        If any file failed (after everything else was fetched).
    """
    from tqdm.auto import tqdm

    manifest = load_manifest(manifest_path)
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    remotes = resolve_manifest(manifest, api_overrides=api_overrides, only=only)
    lock = _read_lock(destination)["files"]
    summary: dict[str, Any] = {"fetched": 0, "skipped": 0, "failed": 0, "errors": []}
    for remote in tqdm(remotes, desc=f"fetch {manifest.name}", disable=not progress, leave=False):
        known = lock.get(remote.path)
        if known and _still_there(destination, known, remote):
            summary["skipped"] += 1
            continue
        try:
            lock[remote.path] = download_file(remote, destination, retries=retries)
            summary["fetched"] += 1
        except FetchError as error:
            summary["failed"] += 1
            summary["errors"].append(str(error))
        _write_lock(destination, manifest, lock)
    sheet = [dict(r.annotations) for r in remotes if r.annotations.get("file_id") and r.path in lock]
    if sheet:
        write_sample_sheet(destination / "gdc_sample_sheet.tsv", pd.DataFrame(sheet))
    _write_lock(destination, manifest, lock)
    if summary["failed"]:
        raise FetchError(f"{summary['failed']} of {len(remotes)} file(s) failed:\n  " + "\n  ".join(summary["errors"]))
    return summary
