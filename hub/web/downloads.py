"""Files a page or the API hands out, streamed as they are made."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.responses import StreamingResponse


def csv(chunks: Iterator[str], filename: str) -> StreamingResponse:
    """`chunks` raises before its first one (a 404, say) while the answer can still be one."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(chunks, media_type="text/csv", headers=headers)
