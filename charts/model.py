"""What every chart function returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chart:
    """A rendered chart: PNG bytes plus what an ``<img>`` tag needs.

    ``width``/``height`` are CSS pixels (the ``<img width height>`` attributes); the PNG itself
    is ``scale`` times larger in each direction (2× for e-mail charts; share cards are 1×
    because their pixel size is what Open Graph / stories expect).
    """

    png: bytes
    alt: str
    width: int
    height: int
    filename: str  # suggested attachment / file name, e.g. "weekly-activity.png"
    scale: int = 2

    @property
    def pixel_width(self) -> int:
        return self.width * self.scale

    @property
    def pixel_height(self) -> int:
        return self.height * self.scale

    @property
    def content_type(self) -> str:
        return "image/png"

    @property
    def cid(self) -> str:
        """A suggested ``Content-ID`` (without ``<>``): stable for the same image bytes."""
        stem = self.filename.rsplit(".", 1)[0]
        return f"{stem}.{hashlib.sha256(self.png).hexdigest()[:16]}@valuemail"
