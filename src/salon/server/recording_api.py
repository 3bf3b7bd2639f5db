"""``GET /api/v1/recordings/{id}/files/{name}?key=...``: a recording's file, for whoever holds
the key a ``recordings`` message gave a host (docs/PROTOCOL.md §3.9, §9).

The key is the authority (no cookie, no CSRF token: a plain link the page can follow): a
missing, forged, expired or other file's key is 403 before anything is looked up, so nobody
learns which recordings exist without one; with a valid key, a recording or file that is gone
is 404. The file is streamed as an attachment, at most the size it had when the request came
(a running recording's files grow while they are read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Final

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from starlette.responses import StreamingResponse

from salon.server.recorder import Recorders
from salon.server.recording_store import FILE_NAME, RECORDING_ID

CHUNK_BYTES: Final = 256 * 1024

_TYPES: Final = {
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".jsonl": "application/x-ndjson",
}

RecordingId = Annotated[str, PathParam(max_length=64)]
FileName = Annotated[str, PathParam(max_length=200)]
Key = Annotated[str | None, Query(max_length=100)]


def _refused(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, detail={"code": code, "message": message})


def build_recordings_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])

    @router.get(
        "/{recording_id}/files/{name}",
        response_class=StreamingResponse,
        responses={
            200: {"description": "the file, as an attachment"},
            403: {"description": "no key, or not a valid one for this file"},
            404: {"description": "no such recording or file (any more)"},
        },
    )
    async def download(
        request: Request, recording_id: RecordingId, name: FileName, key: Key = None
    ) -> StreamingResponse:
        """One file of a recording (``url`` of a ``recordings`` message)."""
        recorders: Recorders | None = request.app.state.salon.recorders
        if recorders is None:
            raise _refused(404, "not_found", "this server keeps no recordings")
        now_s = recorders.clock.wall_ms() / 1000
        if not recorders.keys.check(key, recording_id, name, now_s):
            raise _refused(403, "forbidden", "this link's key is missing, wrong or expired")
        if not RECORDING_ID.fullmatch(recording_id) or not FILE_NAME.fullmatch(name):
            raise _refused(404, "not_found", "no such recording file")
        path = recorders.store.file_path(recording_id, name)
        if path is None:
            raise _refused(404, "not_found", "no such recording file")
        try:
            size = path.stat().st_size
        except OSError:
            raise _refused(404, "not_found", "no such recording file") from None
        headers = {
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        }
        media_type = _TYPES.get(Path(name).suffix, "application/octet-stream")
        return StreamingResponse(_read(path, size), headers=headers, media_type=media_type)

    return router


async def _read(path: Path, size: int) -> AsyncIterator[bytes]:
    """The first ``size`` bytes of ``path``, in chunks."""
    left = size
    async with await anyio.open_file(path, "rb") as handle:
        while left > 0:
            chunk = await handle.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
