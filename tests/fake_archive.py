"""A local stand-in for the GDC and TCIA (NBIA) APIs, serving twin files on 127.0.0.1.

It answers the requests ``mmsurv.fetch`` makes - ``/files`` and ``/cases`` queries,
``/data/<file_id>`` downloads with HTTP ``Range`` support, NBIA ``getSeries`` and
``getImage`` - and can misbehave on purpose: list a wrong md5, or hang up half-way through
a download (once, or every time).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class ServedFile:
    file_id: str
    file_name: str
    data: bytes
    data_type: str
    case: str
    sample: str
    listed_md5: str | None = None  # what /files claims; None = the true md5
    cut_times: int = 0  # hang up half-way through this many GET requests
    gone: bool = False  # listed by /files, but /data answers 404
    project: str = ""  # the case's project, e.g. "TCGA-LUAD"
    sample_type: str = "Primary Tumor"

    @property
    def md5(self) -> str:
        return self.listed_md5 or hashlib.md5(self.data).hexdigest()


@dataclass
class ServedSeries:
    collection: str
    patient: str
    study_uid: str
    series_uid: str
    modality: str
    files: dict[str, bytes]

    def zipped(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            for name, data in self.files.items():
                bundle.writestr(name, data)
        return buffer.getvalue()


@dataclass
class FakeArchive:
    files: dict[str, ServedFile] = field(default_factory=dict)
    series: list[ServedSeries] = field(default_factory=list)
    cases_tsv: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)

    def add_file(self, file_id: str, path: Path, data_type: str, case: str, sample: str, **options) -> ServedFile:
        served = ServedFile(file_id, path.name, path.read_bytes(), data_type, case, sample, **options)
        self.files[file_id] = served
        return served

    def add_series_folder(self, collection: str, folder: Path, patient: str, study_uid: str, series_uid: str, modality: str) -> None:
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        self.series.append(ServedSeries(collection, patient, study_uid, series_uid, modality, files))


def _data_types(filters: dict) -> set[str] | None:
    """The data_type values a GDC filter asks for (None if it does not say)."""
    found: set[str] = set()

    def visit(node: dict) -> None:
        content = node.get("content")
        if isinstance(content, list):
            for child in content:
                visit(child)
        elif isinstance(content, dict) and content.get("field") == "data_type":
            found.update(content["value"])

    visit(filters)
    return found or None


def _handler(archive: FakeArchive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream", extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _send_bytes(self, data: bytes, cut: bool) -> None:
            start = 0
            header = self.headers.get("Range")
            if header and header.startswith("bytes="):
                start = int(header[6:].split("-")[0])
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            url = urllib.parse.urlparse(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            archive.requests.append((url.path, self.headers.get("Range", "")))
            if url.path == "/files":
                wanted = _data_types(json.loads(query["filters"]))
                hits = [f for f in archive.files.values() if wanted is None or f.data_type in wanted]
                start, size = int(query.get("from", 0)), int(query.get("size", 10))
                page = [
                    {
                        "file_id": f.file_id,
                        "file_name": f.file_name,
                        "file_size": len(f.data),
                        "md5sum": f.md5,
                        "data_type": f.data_type,
                        "cases": [
                            {
                                "submitter_id": f.case,
                                "project": {"project_id": f.project},
                                "samples": [{"submitter_id": f.sample, "sample_type": f.sample_type}],
                            }
                        ],
                    }
                    for f in hits[start : start + size]
                ]
                payload = {"data": {"hits": page, "pagination": {"total": len(hits), "from": start, "size": size}}}
                self._send(200, json.dumps(payload).encode(), "application/json")
            elif url.path.startswith("/data/"):
                served = archive.files.get(url.path.split("/")[-1])
                if served is None or served.gone:
                    self._send(404, b"not found")
                    return
                cut = served.cut_times > 0
                served.cut_times -= 1
                self._send_bytes(served.data, cut)
            elif url.path == "/cases":
                self._send(200, archive.cases_tsv.encode(), "text/tab-separated-values")
            elif url.path == "/getSeries":
                rows = [
                    {
                        "SeriesInstanceUID": s.series_uid,
                        "StudyInstanceUID": s.study_uid,
                        "PatientID": s.patient,
                        "Modality": s.modality,
                        "Collection": s.collection,
                    }
                    for s in archive.series
                    if s.collection == query.get("Collection") and query.get("Modality") in (None, s.modality)
                ]
                self._send(200, json.dumps(rows).encode(), "application/json")
            elif url.path == "/getImage":
                match = [s for s in archive.series if s.series_uid == query.get("SeriesInstanceUID")]
                self._send_bytes(match[0].zipped(), cut=False) if match else self._send(404, b"no such series")
            else:
                self._send(404, b"unknown endpoint")

    return Handler


class RunningArchive:
    """Context manager: serve a :class:`FakeArchive` on 127.0.0.1 at :attr:`url`."""

    def __init__(self, archive: FakeArchive) -> None:
        self.archive = archive
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(archive))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RunningArchive:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
